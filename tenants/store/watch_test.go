package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// watcher runs Store.Watch and keeps the latest Catalog.
type watcher struct {
	mu      sync.Mutex
	latest  *tenants.Catalog
	all     []*tenants.Catalog
	inCall  atomic.Int32
	overlap atomic.Bool
	delay   time.Duration
}

func startWatch(t *testing.T, s *Store, delay time.Duration) *watcher {
	t.Helper()
	w := &watcher{delay: delay}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func(c *tenants.Catalog) {
			if w.inCall.Add(1) > 1 {
				w.overlap.Store(true)
			}
			time.Sleep(w.delay)
			w.mu.Lock()
			w.latest = c
			w.all = append(w.all, c)
			w.mu.Unlock()
			w.inCall.Add(-1)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("watch did not return after cancel")
		}
		if w.overlap.Load() {
			t.Error("onCatalog was called concurrently")
		}
	})
	return w
}

// waitFor waits until the latest Catalog satisfies cond.
func (w *watcher) waitFor(t *testing.T, what string, cond func(*tenants.Catalog) bool) *tenants.Catalog {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		c := w.latest
		w.mu.Unlock()
		if c != nil && cond(c) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for a catalog where %s", what)
	return nil
}

func displayName(c *tenants.Catalog, id string) string {
	if t, ok := c.Tenant(id); ok {
		return t.Spec.DisplayName
	}
	return "<absent>"
}

func TestWatchDeliversEveryUpdateAcrossCompaction(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A0")+"---\n"+tenantYAML("tenant-b", "B0"))
	s.pauseWatch = make(chan chan struct{})
	w := startWatch(t, s, 0)
	w.waitFor(t, "both tenants are present", func(c *tenants.Catalog) bool { return c.Len() == 2 })
	if !s.Synced() {
		t.Fatal("Synced is false after the first catalog")
	}

	// Break the watch, change things, compact etcd past the point the
	// watch resumes from: the resumed watch gets ErrCompacted.
	resume := make(chan struct{})
	s.pauseWatch <- resume
	var last int64
	for i := 1; i <= 3; i++ {
		last = mustApply(t, s, tenantYAML("tenant-a", fmt.Sprintf("A%d", i))).Revision
	}
	mustApply(t, s, tenantYAML("tenant-c", "C"))
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-b", "tester"); err != nil {
		t.Fatal(err)
	}
	k, rec, err := s.CreateAPIKey(ctx, "tenant-c", "k", 0, "tester")
	if err != nil || k == "" {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "anything")
	if err != nil {
		t.Fatal(err)
	}
	last = resp.Header.Revision
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	close(resume)

	c := w.waitFor(t, "every update arrived", func(c *tenants.Catalog) bool { return c.Revision() >= last })
	if got := displayName(c, "tenant-a"); got != "A3" {
		t.Errorf("tenant-a = %q, want A3", got)
	}
	if _, ok := c.Tenant("tenant-b"); ok {
		t.Error("deleted tenant-b is still in the catalog")
	}
	if got := displayName(c, "tenant-c"); got != "C" {
		t.Errorf("tenant-c = %q, want C", got)
	}
	if _, ok := c.APIKey(rec.ID); !ok {
		t.Error("api key created during the break is missing")
	}
	if n := counterValue(t, s.metrics.watchRestarts.WithLabelValues("compacted")); n < 1 {
		t.Errorf("compacted restarts = %v, want >= 1", n)
	}
	if s.Revision() < last {
		t.Errorf("Revision() = %d, want >= %d", s.Revision(), last)
	}

	// The watch keeps following after the re-read.
	mustApply(t, s, tenantYAML("tenant-c", "C2"))
	w.waitFor(t, "tenant-c is C2", func(c *tenants.Catalog) bool { return displayName(c, "tenant-c") == "C2" })
}

func TestWatchSharesUnchangedTenants(t *testing.T) {
	s, _ := newTestStore(t)
	mustApply(t, s, tenantYAML("tenant-a", "A")+"---\n"+tenantYAML("tenant-b", "B"))
	w := startWatch(t, s, 0)
	c1 := w.waitFor(t, "two tenants", func(c *tenants.Catalog) bool { return c.Len() == 2 })
	mustApply(t, s, tenantYAML("tenant-b", "B2"))
	c2 := w.waitFor(t, "tenant-b is B2", func(c *tenants.Catalog) bool { return displayName(c, "tenant-b") == "B2" })
	if !c2.Unchanged(c1, "tenant-a") {
		t.Error("tenant-a was rebuilt although it did not change")
	}
	if c2.Unchanged(c1, "tenant-b") {
		t.Error("tenant-b kept its old object although it changed")
	}
}

func TestWatchKeepsLastGoodVersionOfCorruptTenant(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A")+"---\n"+tenantYAML("tenant-b", "B"))
	w := startWatch(t, s, 0)
	c1 := w.waitFor(t, "two tenants", func(c *tenants.Catalog) bool { return c.Len() == 2 })
	goodA, _ := c1.Tenant("tenant-a")

	// Hand-written into etcd: a value that does not decode, a value that
	// decodes but does not validate, and a new tenant that never was good.
	if _, err := cli.Put(ctx, testPrefix+"tenants/tenant-a", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"tenant-a"},"spec":{"displayNme":"typo"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, testPrefix+"tenants/tenant-x", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"tenant-x"},"spec":{"tier":"platinum"}}`); err != nil {
		t.Fatal(err)
	}
	// Another tenant still updates.
	mustApply(t, s, tenantYAML("tenant-b", "B2"))
	c2 := w.waitFor(t, "tenant-b is B2", func(c *tenants.Catalog) bool { return displayName(c, "tenant-b") == "B2" })
	if a, ok := c2.Tenant("tenant-a"); !ok || a != goodA {
		t.Errorf("tenant-a: got %v, want its last good version kept", a)
	}
	if _, ok := c2.Tenant("tenant-x"); ok {
		t.Error("tenant-x, never valid, is in the catalog")
	}
	for id, want := range map[string]string{"tenant-a": "displayNme", "tenant-x": "platinum"} {
		var st *tenants.Status
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var err error
			if st, err = s.GetStatus(ctx, id); err != nil {
				t.Fatal(err)
			}
			if st != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if st == nil || st.State != tenants.StateInvalid || !strings.Contains(st.Message, want) {
			t.Errorf("status of %s = %+v, want invalid mentioning %q", id, st, want)
		}
	}
	if n := counterValue(t, s.metrics.invalidValues.WithLabelValues("Tenant")); n < 2 {
		t.Errorf("invalid values counted %v, want 2", n)
	}

	// Fixing the value makes it current again and clears the status.
	mustApply(t, s, tenantYAML("tenant-a", "A fixed"))
	w.waitFor(t, "tenant-a is fixed", func(c *tenants.Catalog) bool { return displayName(c, "tenant-a") == "A fixed" })
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.GetStatus(ctx, "tenant-a")
		if err != nil {
			t.Fatal(err)
		}
		if st != nil && st.State == tenants.StateAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of the fixed tenant = %+v, want accepted", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchSkipsToLatestForSlowConsumer(t *testing.T) {
	s, _ := newTestStore(t)
	mustApply(t, s, tenantYAML("tenant-a", "v0"))
	w := startWatch(t, s, 50*time.Millisecond)
	w.waitFor(t, "tenant-a", func(c *tenants.Catalog) bool { return c.Len() == 1 })
	const updates = 20
	for i := 1; i <= updates; i++ {
		mustApply(t, s, tenantYAML("tenant-a", fmt.Sprintf("v%d", i)))
	}
	w.waitFor(t, "the last update", func(c *tenants.Catalog) bool { return displayName(c, "tenant-a") == fmt.Sprintf("v%d", updates) })
	w.mu.Lock()
	calls := len(w.all)
	w.mu.Unlock()
	if calls > updates {
		t.Errorf("slow consumer got %d catalogs for %d updates; want intermediate ones skipped", calls, updates)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestWatchFollowsAcrossEtcdRestart(t *testing.T) {
	s, _, e := newTestStoreEtcd(t)
	mustApply(t, s, tenantYAML("tenant-a", "before"))
	w := startWatch(t, s, 0)
	c1 := w.waitFor(t, "tenant-a", func(c *tenants.Catalog) bool { return c.Len() == 1 })

	etcdtest.Restart(t, e, 300*time.Millisecond)
	// The last catalog stays in force while etcd is away.
	w.mu.Lock()
	kept := w.latest
	w.mu.Unlock()
	if kept != c1 && displayName(kept, "tenant-a") != "before" {
		t.Fatalf("catalog changed while etcd was away: %v", kept.TenantIDs())
	}
	mustApply(t, s, tenantYAML("tenant-a", "after"))
	w.waitFor(t, "the update after the restart", func(c *tenants.Catalog) bool { return displayName(c, "tenant-a") == "after" })
}
