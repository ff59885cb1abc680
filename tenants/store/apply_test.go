package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

func TestApplyGetListDeleteRoundTrip(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)

	res := mustApply(t, s, tenantYAML("tenant-a", "A")+"---\n"+tenantYAML("tenant-b", "B"))
	if got, want := outcomes(res), "tenant/tenant-a created, tenant/tenant-b created"; got != want {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	if res.Revision == 0 {
		t.Fatal("revision of a write must be set")
	}

	o, err := s.Get(ctx, tenants.KindTenant, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	ta := o.(*tenants.Tenant)
	if ta.Spec.DisplayName != "A" || ta.Metadata.ResourceVersion != fmt.Sprint(res.Revision) {
		t.Fatalf("got %q rv %q, want A rv %d", ta.Spec.DisplayName, ta.Metadata.ResourceVersion, res.Revision)
	}
	raw, err := cli.Get(ctx, testPrefix+"tenants/tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Kvs[0].Value), "resourceVersion") {
		t.Fatalf("stored JSON carries resourceVersion: %s", raw.Kvs[0].Value)
	}

	list, err := s.List(ctx, tenants.KindTenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].GetMeta().Name != "tenant-a" || list[1].GetMeta().Name != "tenant-b" {
		t.Fatalf("list = %v", list)
	}

	// Re-applying the same content (even carrying the current version) is
	// unchanged: no write, no audit record.
	before := keyCount(t, cli, "audit/")
	res = mustApply(t, s, tenantYAML("tenant-a", "A"))
	if got := outcomes(res); got != "tenant/tenant-a unchanged" || res.Revision != 0 {
		t.Fatalf("reapply: %q rev %d", got, res.Revision)
	}
	if after := keyCount(t, cli, "audit/"); after != before {
		t.Fatalf("unchanged apply wrote audit records: %d → %d", before, after)
	}
	res = mustApply(t, s, tenantYAML("tenant-a", "A2"))
	if got := outcomes(res); got != "tenant/tenant-a configured" {
		t.Fatalf("change: %q", got)
	}

	if err := s.Delete(ctx, tenants.KindTenant, "tenant-a", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, tenants.KindTenant, "tenant-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-a", "tester"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	recs, err := s.AuditList(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action+":"+r.Label)
	}
	if got, want := strings.Join(actions, ","), "create:tester,configure:tester,delete:tester"; got != want {
		t.Fatalf("audit of tenant-a = %s, want %s", got, want)
	}
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	s, cli := newTestStore(t)
	bad := strings.Replace(tenantYAML("tenant-b", "B"), "upstream: executive", "upstream: nowhere", 1)
	docs := decode(t, "tenants.yaml", tenantYAML("tenant-a", "A")+"---\n"+bad)
	_, err := s.Apply(ctxT(t), docs, ApplyOptions{Actor: "tester"})
	if err == nil {
		t.Fatal("apply with an invalid document succeeded")
	}
	for _, want := range []string{"tenants.yaml", "document 2", "spec.routes[0].upstream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	for _, dir := range []string{"tenants/", "audit/"} {
		if n := keyCount(t, cli, dir); n != 0 {
			t.Errorf("%d keys under %s after a refused apply", n, dir)
		}
	}
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	s, cli := newTestStore(t)
	res, err := s.Apply(ctxT(t), decode(t, "a.yaml", tenantYAML("tenant-a", "A")), ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "tenant/tenant-a created" {
		t.Fatalf("dry run outcome %q", got)
	}
	if n := keyCount(t, cli, ""); n != 0 {
		t.Fatalf("dry run wrote %d keys", n)
	}
}

func TestApplyStaleResourceVersionFails(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))
	o, err := s.Get(ctx, tenants.KindTenant, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	read := o.GetMeta().ResourceVersion

	// Somebody else changes it after we read it...
	res := mustApply(t, s, tenantYAML("tenant-a", "changed by somebody else"))

	// ...so our change, based on what we read, is refused.
	mine := o.(*tenants.Tenant)
	mine.Spec.DisplayName = "mine"
	_, err = s.Apply(ctx, []tenants.Document{{File: "mine.yaml", Index: 1, Object: mine}}, ApplyOptions{})
	want := fmt.Sprintf("was modified since you read it (resourceVersion %s, now %d)", read, res.Revision)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("stale apply: %v, want error containing %q", err, want)
	}
	got, err := s.Get(ctx, tenants.KindTenant, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if dn := got.(*tenants.Tenant).Spec.DisplayName; dn != "changed by somebody else" {
		t.Fatalf("stale apply overwrote the tenant: %q", dn)
	}

	// With the current version it goes through.
	mine.Metadata.ResourceVersion = got.GetMeta().ResourceVersion
	if _, err := s.Apply(ctx, []tenants.Document{{File: "mine.yaml", Index: 1, Object: mine}}, ApplyOptions{}); err != nil {
		t.Fatalf("apply with current resourceVersion: %v", err)
	}
}

func TestConcurrentAppliers(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("shared", "v0"))
	o, err := s.Get(ctx, tenants.KindTenant, "shared")
	if err != nil {
		t.Fatal(err)
	}
	rv := o.GetMeta().ResourceVersion

	const writers = 6
	var wg sync.WaitGroup
	pinnedErrs := make([]error, writers)
	blindErrs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer creates its own tenant (never conflicts)...
			_, blindErrs[i] = s.Apply(ctx, decode(t, "w.yaml", tenantYAML(fmt.Sprintf("writer-%d", i), "w")), ApplyOptions{Actor: fmt.Sprint(i)})
			// ...and updates the shared tenant based on the same read.
			docs := decode(t, "shared.yaml", tenantYAML("shared", fmt.Sprintf("by %d", i)))
			docs[0].Object.GetMeta().ResourceVersion = rv
			_, pinnedErrs[i] = s.Apply(ctx, docs, ApplyOptions{Actor: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	won := 0
	for i := range writers {
		if blindErrs[i] != nil {
			t.Errorf("writer %d: own tenant: %v", i, blindErrs[i])
		}
		switch {
		case pinnedErrs[i] == nil:
			won++
		case !strings.Contains(pinnedErrs[i].Error(), "was modified since you read it"):
			t.Errorf("writer %d: unexpected error %v", i, pinnedErrs[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d writers updated the shared tenant from the same resourceVersion, want exactly 1", won)
	}
	if n := keyCount(t, cli, "audit/"); n != 1+writers+1 {
		t.Fatalf("%d audit records, want %d", n, 2+writers)
	}
	if err := s.AuditVerify(ctx); err != nil {
		t.Fatalf("audit chain after concurrent writers: %v", err)
	}
}

func TestApplyRefusesOversizedDocumentBeforeSending(t *testing.T) {
	s, cli := newTestStore(t)
	big := strings.Replace(tenantYAML("tenant-a", "A"), "metadata:\n", "metadata:\n  labels: {blob: "+strings.Repeat("x", 2<<20)+"}\n", 1)
	_, err := s.Apply(ctxT(t), decode(t, "big.yaml", big), ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "1.5 MiB") || !strings.Contains(err.Error(), "big.yaml (document 1)") {
		t.Fatalf("oversized apply: %v", err)
	}
	if n := keyCount(t, cli, ""); n != 0 {
		t.Fatalf("%d keys written", n)
	}
}

func TestDeleteTierInUseIsRefused(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, `apiVersion: tenantmesh.io/v1alpha1
kind: Tier
metadata: {name: gold}
spec:
  maxConcurrentRequests: 10
---
`+strings.Replace(tenantYAML("tenant-a", "A"), "tier: enterprise", "tier: gold", 1))
	err := s.Delete(ctx, tenants.KindTier, "gold", "tester")
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "tenant-a") {
		t.Fatalf("delete of a tier in use: %v", err)
	}
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-a", "tester"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, tenants.KindTier, "gold", "tester"); err != nil {
		t.Fatalf("delete of an unused tier: %v", err)
	}
}

func TestTenantDeleteRemovesKeysAndStatus(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A")+"---\n"+tenantYAML("tenant-b", "B"))
	for _, id := range []string{"tenant-a", "tenant-b"} {
		if _, _, err := s.CreateAPIKey(ctx, id, "ci", 0, "tester"); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteStatus(ctx, tenants.Status{Tenant: id, State: tenants.StateAccepted, Revision: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-a", "tester"); err != nil {
		t.Fatal(err)
	}
	if n := keyCount(t, cli, "apikeys/tenant-a/"); n != 0 {
		t.Errorf("%d api keys of the deleted tenant remain", n)
	}
	if n := keyCount(t, cli, "apikeys/tenant-b/"); n != 1 {
		t.Errorf("tenant-b has %d api keys, want 1", n)
	}
	if st, err := s.GetStatus(ctx, "tenant-a"); err != nil || st != nil {
		t.Errorf("status of deleted tenant: %v %v", st, err)
	}
}

func TestDiffShowsWhatApplyWouldChange(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))
	entries, err := s.Diff(ctx, decode(t, "d.yaml", tenantYAML("tenant-a", "Changed")+"---\n"+tenantYAML("tenant-b", "B")))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Outcome != Configured || entries[1].Outcome != Created {
		t.Fatalf("entries = %+v", entries)
	}
	for _, want := range []string{"--- tenant/tenant-a (stored)", "-  displayName: A\n", "+  displayName: Changed\n", "@@ "} {
		if !strings.Contains(entries[0].Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, entries[0].Diff)
		}
	}
	if !strings.Contains(entries[1].Diff, "+kind: Tenant\n") {
		t.Errorf("creation diff:\n%s", entries[1].Diff)
	}
	if n := keyCount(t, cli, "tenants/"); n != 1 {
		t.Fatalf("diff wrote: %d tenants", n)
	}
}
