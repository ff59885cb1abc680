package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

func TestAPIKeyCreateVerifyRevokeExpire(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }
	mustApply(t, s, tenantYAML("tenant-a", "A"))

	if _, _, err := s.CreateAPIKey(ctx, "nobody", "x", 0, "tester"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key for a missing tenant: %v, want ErrNotFound", err)
	}

	key, rec, err := s.CreateAPIKey(ctx, "tenant-a", "ci", time.Hour, "tester")
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := tenants.ParseAPIKey(key)
	if !ok || id != rec.ID {
		t.Fatalf("key %q does not carry id %q", key, rec.ID)
	}
	// Only the hash is stored: the secret appears nowhere in etcd.
	all, err := cli.Get(ctx, "/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all.Kvs {
		if strings.Contains(string(kv.Value), secret) {
			t.Fatalf("key %s stores the secret", kv.Key)
		}
	}
	keys, err := s.ListAPIKeys(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Hash != tenants.HashAPIKeySecret(secret) || keys[0].Name != "ci" {
		t.Fatalf("stored keys = %+v", keys)
	}
	if !keys[0].Usable(now) || keys[0].Usable(now.Add(time.Hour+time.Second)) {
		t.Fatalf("key with 1h ttl: usable now %v, after expiry %v", keys[0].Usable(now), keys[0].Usable(now.Add(time.Hour+time.Second)))
	}

	// A second key for rotation without a gap.
	_, rec2, err := s.CreateAPIKey(ctx, "tenant-a", "rotated", 0, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "tenant-a", rec.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "tenant-a", "000000000000000000", "tester"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke of an unknown key: %v", err)
	}
	keys, err = s.ListAPIKeys(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	usable := map[string]bool{}
	for _, k := range keys {
		usable[k.ID] = k.Usable(now)
	}
	if usable[rec.ID] || !usable[rec2.ID] {
		t.Fatalf("after revoke: usable = %v", usable)
	}
	recs, err := s.AuditList(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action+" "+string(r.Kind))
	}
	if want := "create Tenant,create APIKey,create APIKey,revoke APIKey"; strings.Join(got, ",") != want {
		t.Fatalf("audit = %v, want %s", got, want)
	}
}

func TestWriteStatusSkipsWhenOnlyTimeChanges(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	st := tenants.Status{Tenant: "tenant-a", State: tenants.StateInvalid, Revision: 3, Message: "bad"}
	if err := s.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	rev := func() int64 {
		resp, err := cli.Get(ctx, testPrefix+"status/tenant-a")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("status key: %v %v", resp, err)
		}
		return resp.Kvs[0].ModRevision
	}
	first := rev()
	st.Time = time.Now().Add(time.Hour)
	if err := s.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	if rev() != first {
		t.Fatal("a status differing only in time was written again")
	}
	st.State = tenants.StateAccepted
	if err := s.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	if rev() == first {
		t.Fatal("a changed status was not written")
	}
	got, err := s.GetStatus(ctx, "tenant-a")
	if err != nil || got.State != tenants.StateAccepted {
		t.Fatalf("GetStatus = %+v, %v", got, err)
	}
}
