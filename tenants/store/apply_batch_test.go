package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// manyTenants returns n tenant manifests (tenant-000 …) as one stream.
func manyTenants(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "---\n%s", tenantYAML(fmt.Sprintf("tenant-%03d", i), fmt.Sprintf("T%d", i)))
	}
	return b.String()
}

const goldTier = `---
apiVersion: tenantmesh.io/v1alpha1
kind: Tier
metadata: {name: gold}
spec:
  maxConcurrentRequests: 10
`

func countOutcomes(r *ApplyResult) map[Outcome]int {
	out := map[Outcome]int{}
	for _, o := range r.Objects {
		out[o.Outcome]++
	}
	return out
}

// 200 tenants need about 600 operations: more than etcdtest's etcd (its
// default limit of 128) takes in one transaction, so this also covers
// the fall-back from BatchTxnOps.
func TestApplyOfMoreThanOneTransaction(t *testing.T) {
	s, cli := newTestStore(t)
	var progress []int
	res, err := s.Apply(ctxT(t), decode(t, "many.yaml", manyTenants(0, 200)), ApplyOptions{Actor: "tester", Progress: func(done, total int) {
		if total != 200 {
			t.Errorf("progress total %d, want 200", total)
		}
		progress = append(progress, done)
	}})
	if err != nil {
		t.Fatalf("apply of 200 tenants: %v", err)
	}
	if c := countOutcomes(res); c[Created] != 200 || len(res.Objects) != 200 {
		t.Fatalf("outcomes %v", c)
	}
	if res.Objects[199].Name != "tenant-199" || res.Revision == 0 {
		t.Fatalf("result not in input order or no revision: %+v, rev %d", res.Objects[199], res.Revision)
	}
	if len(progress) < 2 || progress[len(progress)-1] != 200 {
		t.Fatalf("progress %v: want several transactions ending at 200", progress)
	}
	for dir, want := range map[string]int64{tenantsDir: 200, hostsDir: 200, auditDir: 200} {
		if n := keyCount(t, cli, dir); n != want {
			t.Errorf("%s: %d keys, want %d", dir, n, want)
		}
	}
	if err := s.AuditVerify(ctxT(t)); err != nil {
		t.Fatalf("audit chain after a batched apply: %v", err)
	}
}

func TestApplyInterruptedRunsAgain(t *testing.T) {
	s, cli := newTestStore(t)
	// The first half landed before the interruption.
	if _, err := s.Apply(ctxT(t), decode(t, "half.yaml", manyTenants(0, 100)), ApplyOptions{Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply(ctxT(t), decode(t, "all.yaml", manyTenants(0, 200)), ApplyOptions{Actor: "tester"})
	if err != nil {
		t.Fatalf("apply again: %v", err)
	}
	for i, o := range res.Objects {
		want := Created
		if i < 100 {
			want = Unchanged
		}
		if o.Outcome != want {
			t.Fatalf("%s: %s, want %s", o.Name, o.Outcome, want)
		}
	}
	if n := keyCount(t, cli, auditDir); n != 200 {
		t.Fatalf("%d audit records, want 200 (one per object written)", n)
	}
}

// The tier comes last in the files; the tenants naming it can only be
// stored after it.
func TestApplyBatchedInDependencyOrder(t *testing.T) {
	s, _ := newTestStore(t)
	docs := decode(t, "order.yaml", strings.ReplaceAll(manyTenants(0, 200), "tier: enterprise", "tier: gold")+goldTier)
	res, err := s.Apply(ctxT(t), docs, ApplyOptions{Actor: "tester"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if last := res.Objects[200]; last.Kind != tenants.KindTier || last.Outcome != Created {
		t.Fatalf("tier outcome %+v", last)
	}
	recs, err := s.AuditList(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 201 || recs[0].Kind != tenants.KindTier {
		t.Fatalf("%d records, first %+v: want the tier written first", len(recs), recs[0])
	}
}

func TestApplyAtomicTooBig(t *testing.T) {
	s, cli := newTestStore(t)
	_, err := s.Apply(ctxT(t), decode(t, "many.yaml", manyTenants(0, 200)), ApplyOptions{Actor: "tester", Atomic: true})
	if !errors.Is(err, ErrTooBigForAtomic) {
		t.Fatalf("atomic apply of 200 tenants: %v, want ErrTooBigForAtomic", err)
	}
	t.Log(err)
	for _, want := range []string{"--atomic", "operations in one etcd transaction", "nothing was written", "without --atomic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := keyCount(t, cli, ""); n != 0 {
		t.Fatalf("%d keys written", n)
	}
	// What fits stays all-or-nothing.
	res, err := s.Apply(ctxT(t), decode(t, "few.yaml", manyTenants(0, 10)), ApplyOptions{Actor: "tester", Atomic: true})
	if err != nil || countOutcomes(res)[Created] != 10 {
		t.Fatalf("atomic apply of 10 tenants: %v", err)
	}
}

func TestApplyBatchedValidatesEverythingFirst(t *testing.T) {
	s, cli := newTestStore(t)
	docs := decode(t, "many.yaml", manyTenants(0, 200))
	bad := decode(t, "many.yaml", strings.Replace(tenantYAML("tenant-149", "T149"), "port: 8080", "port: 80800", 1))[0]
	bad.Index = docs[149].Index
	docs[149] = bad
	_, err := s.Apply(ctxT(t), docs, ApplyOptions{Actor: "tester"})
	var list tenants.ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "tenant-149") {
		t.Fatalf("apply with document 150 invalid: %v", err)
	}
	if n := keyCount(t, cli, ""); n != 0 {
		t.Fatalf("%d keys written before the invalid document was reported", n)
	}
}

// A host taken by a stored tenant is found before anything is written,
// however many transactions the apply would need.
func TestApplyBatchedHostConflictWritesNothing(t *testing.T) {
	s, cli := newTestStore(t)
	mustApply(t, s, strings.ReplaceAll(tenantYAML("owner", "O"), "owner.api.example.com", "tenant-150.api.example.com"))
	before := keyCount(t, cli, "")
	_, err := s.Apply(ctxT(t), decode(t, "many.yaml", manyTenants(0, 200)), ApplyOptions{Actor: "tester"})
	if err == nil || !strings.Contains(err.Error(), `already belongs to tenant "owner"`) {
		t.Fatalf("apply with a taken host: %v", err)
	}
	if n := keyCount(t, cli, ""); n != before {
		t.Fatalf("%d keys, want %d: something was written", n, before)
	}
}

// 40 tenants with three hosts each: few documents, but more operations
// than etcd's default limit of 128.
func manyHosts(n int) string {
	var b strings.Builder
	for i := range n {
		id := fmt.Sprintf("tenant-%03d", i)
		fmt.Fprintf(&b, "---\n%s", strings.Replace(tenantYAML(id, "T"), "hosts: ["+id+".api.example.com]",
			fmt.Sprintf("hosts: [%[1]s.api.example.com, %[1]s.b.example.com, %[1]s.c.example.com]", id), 1))
	}
	return b.String()
}

func TestApplyOfFewDocumentsWithManyOperations(t *testing.T) {
	s, cli := newTestStore(t)
	_, err := s.Apply(ctxT(t), decode(t, "hosts.yaml", manyHosts(40)), ApplyOptions{Actor: "tester", Atomic: true})
	if !errors.Is(err, ErrTooBigForAtomic) || !strings.Contains(err.Error(), "needs 2") {
		t.Fatalf("atomic apply of 40 tenants with 3 hosts each: %v", err)
	}
	if n := keyCount(t, cli, ""); n != 0 {
		t.Fatalf("%d keys written by a refused atomic apply", n)
	}
	res, err := s.Apply(ctxT(t), decode(t, "hosts.yaml", manyHosts(40)), ApplyOptions{Actor: "tester"})
	if err != nil || countOutcomes(res)[Created] != 40 {
		t.Fatalf("apply of 40 tenants with 3 hosts each: %v", err)
	}
	if n := keyCount(t, cli, hostsDir); n != 120 {
		t.Fatalf("%d host claims, want 120", n)
	}
}

// A batched apply updates as well: changed tenants are configured and
// their dropped host claims released, the others unchanged.
func TestApplyBatchedConfigures(t *testing.T) {
	s, cli := newTestStore(t)
	if _, err := s.Apply(ctxT(t), decode(t, "many.yaml", manyTenants(0, 200)), ApplyOptions{Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	docs := decode(t, "moved.yaml", manyTenants(0, 100)+strings.ReplaceAll(manyTenants(100, 100), ".api.example.com", ".moved.example.com"))
	res, err := s.Apply(ctxT(t), docs, ApplyOptions{Actor: "tester"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if c := countOutcomes(res); c[Unchanged] != 100 || c[Configured] != 100 {
		t.Fatalf("outcomes %v", c)
	}
	claims, err := cli.Get(ctxT(t), testPrefix+hostsDir+"tenant-150.", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Kvs) != 1 || !strings.HasSuffix(string(claims.Kvs[0].Key), "tenant-150.moved.example.com") {
		t.Fatalf("claims of tenant-150: %v", claims.Kvs)
	}
	if err := s.AuditVerify(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// Cancelled after its first transaction, an apply leaves whole objects;
// running it again finishes the job.
func TestApplyCancelledMidwayRunsAgain(t *testing.T) {
	s, cli := newTestStore(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	docs := decode(t, "many.yaml", manyTenants(0, 200))
	first := 0
	_, err := s.Apply(ctx, docs, ApplyOptions{Actor: "tester", Progress: func(done, _ int) {
		if first == 0 {
			first = done
			cancel()
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "run the same apply again") {
		t.Fatalf("cancelled apply: %v", err)
	}
	if n := keyCount(t, cli, tenantsDir); n != int64(first) || keyCount(t, cli, auditDir) != n || keyCount(t, cli, hostsDir) != n {
		t.Fatalf("%d tenants stored after the first transaction of %d", n, first)
	}
	res, err := s.Apply(ctxT(t), docs, ApplyOptions{Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	if c := countOutcomes(res); c[Unchanged] != first || c[Created] != 200-first {
		t.Fatalf("outcomes %v after %d landed", c, first)
	}
}
