package controlplane

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func TestServeSignsPreloadWithTheKeyBesideTheContextKey(t *testing.T) {
	cli, e := etcdtest.Start(t)
	cfg := testConfig(t)
	cfg.EtcdEndpoints, cfg.Preload = []string{etcdtest.ClientURL(e)}, "testdata/preload-a"
	cfg.ContextKeyFile = filepath.Join(t.TempDir(), "keys", "context.pem")
	stop := startRun(t, cfg)
	eventually(t, "http://"+cfg.AdminListen+"/readyz", "ready", func(r httpResult) bool { return r.code == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	key, err := store.LoadAuditKey(filepath.Join(filepath.Dir(cfg.ContextKeyFile), store.AuditKeyFileName))
	if err != nil {
		t.Fatalf("serve did not create the audit key beside the context key: %v", err)
	}
	st := store.New(cli, store.Options{Logger: quietLogger(), Audit: store.AuditOptions{Key: key}})
	ctx := context.Background()
	recs, err := st.AuditList(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].KeyID != key.ID() || recs[0].Label != PreloadActor || recs[0].Actor != "" {
		t.Fatalf("preload record %+v, want signed by %s, label preload, no authenticated actor", recs, key.ID())
	}
	if err := st.AuditVerify(ctx); err != nil {
		t.Fatalf("verify with the key serve created: %v", err)
	}
	// The next start reuses the key instead of making another one.
	stop = startRun(t, cfg)
	eventually(t, "http://"+cfg.AdminListen+"/readyz", "ready", func(r httpResult) bool { return r.code == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	again, err := store.LoadAuditKey(filepath.Join(filepath.Dir(cfg.ContextKeyFile), store.AuditKeyFileName))
	if err != nil || again.ID() != key.ID() {
		t.Fatalf("key after restart %v %v, want %s", again, err, key.ID())
	}
}

func TestAuditCompactorAppliesRetention(t *testing.T) {
	cli, _ := etcdtest.Start(t)
	key, err := store.GenerateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	var offset time.Duration
	clock := func() time.Time { return time.Now().Add(offset) }
	st := store.New(cli, store.Options{Logger: quietLogger(), Now: clock, Audit: store.AuditOptions{Key: key}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	docs, err := tenants.Load("testdata/preload-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	docs[0].Object.(*tenants.Tenant).Spec.Audit = &tenants.TenantAudit{Retention: "1h"}
	if _, err := st.Apply(ctx, docs, store.ApplyOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	offset = 2 * time.Hour // set before the part starts: no race on the clock
	c := &auditCompactor{st: st, every: 20 * time.Millisecond, log: quietLogger()}
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, err := st.AuditList(ctx, "tenant-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 && recs[0].Summary != nil {
			if recs[0].Label != CompactActor || recs[0].Summary.Count != 1 {
				t.Fatalf("summary %+v", recs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no compaction; records %+v, last error %v", recs, c.Degraded())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.AuditVerify(ctx); err != nil {
		t.Fatalf("verify after compaction: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
