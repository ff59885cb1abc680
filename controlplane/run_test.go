package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// testConfig is a Config on free ports with its files in a temporary
// directory, so tests neither collide with each other nor with a running
// `tenantmesh serve`.
func testConfig(t *testing.T) Config {
	return Config{
		DataDir:                t.TempDir(),
		EmbeddedEtcdListen:     freeAddr(t),
		EmbeddedEtcdPeerListen: freeAddr(t),
		XDSListen:              freeAddr(t),
		AuthzListen:            freeAddr(t),
		AdminListen:            freeAddr(t),
		AdminPrivateListen:     freeAddr(t),
		Logger:                 quietLogger(),
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// gatePart is a part that is not ready until opened, and records the
// Catalogs it is handed.
type gatePart struct {
	mu       sync.Mutex
	open     bool
	catalogs []*tenants.Catalog
}

func (g *gatePart) Name() string { return "gate" }
func (g *gatePart) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (g *gatePart) Ready() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return errors.New("gate closed")
	}
	return nil
}
func (g *gatePart) Update(c *tenants.Catalog) {
	g.mu.Lock()
	g.catalogs = append(g.catalogs, c)
	g.mu.Unlock()
}
func (g *gatePart) RegisterAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/gate", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := w.Write([]byte("gate")); err != nil {
			return
		}
	})
}

// startRun runs Run in the background and returns a stop function that
// cancels it and returns Run's result.
func startRun(t *testing.T, cfg Config) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(30 * time.Second):
				result = errors.New("Run did not return within 30s of cancel")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

type httpResult struct {
	code int
	body string
}

func get(url string) (httpResult, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(b)}, err
}

// eventually polls url until cond holds.
func eventually(t *testing.T, url, what string, cond func(httpResult) bool) httpResult {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last httpResult
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = get(url)
		if lastErr == nil && cond(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: timed out waiting for %s; last %d %q %v", url, what, last.code, last.body, lastErr)
	return last
}

func TestRunServesHealthReadinessAndPreload(t *testing.T) {
	gate := &gatePart{}
	cfg := testConfig(t)
	cfg.Preload = "testdata/preload-a"
	cfg.ExtraParts = []PartFactory{func(*Env) (Part, error) { return gate, nil }}
	stop := startRun(t, cfg)
	base := "http://" + cfg.AdminListen

	eventually(t, base+"/healthz", "200", func(r httpResult) bool { return r.code == 200 })
	// Synced with etcd, but one part is not ready: 503 naming it.
	r := eventually(t, base+"/readyz", "store ready, gate not", func(r httpResult) bool {
		return r.code == 503 && strings.Contains(r.body, `"store":{"ready":true}`)
	})
	var rd Readiness
	if err := json.Unmarshal([]byte(r.body), &rd); err != nil {
		t.Fatalf("readyz body %q: %v", r.body, err)
	}
	if rd.Ready || rd.Checks["gate"].Ready || rd.Checks["gate"].Detail != "gate closed" {
		t.Fatalf("readyz = %+v", rd)
	}
	gate.mu.Lock()
	gate.open = true
	gate.mu.Unlock()
	eventually(t, base+"/readyz", "200", func(r httpResult) bool { return r.code == 200 })

	gate.mu.Lock()
	n := len(gate.catalogs)
	var got *tenants.Catalog
	if n > 0 {
		got = gate.catalogs[n-1]
	}
	gate.mu.Unlock()
	if got == nil {
		t.Fatal("the sink got no catalog before readiness")
	}
	if _, ok := got.Tenant("tenant-a"); !ok {
		t.Fatalf("preloaded tenant-a not in the catalog: %v", got.TenantIDs())
	}
	// Operators' endpoints are on the private listener.
	private := "http://" + cfg.AdminPrivateListen
	if r, err := get(private + "/debug/catalog"); err != nil || !strings.Contains(r.body, `"id": "tenant-a"`) {
		t.Fatalf("/debug/catalog: %v %q", err, r.body)
	}
	if r, err := get(private + "/metrics"); err != nil || !strings.Contains(r.body, "tenantmesh_store_synced 1") || !strings.Contains(r.body, "tenantmesh_etcd_reachable 1") {
		t.Fatalf("/metrics: %v %q", err, r.body)
	}
	if r, err := get(private + "/debug/pprof/heap?debug=1"); err != nil || !strings.Contains(r.body, "heap profile:") {
		t.Fatalf("/debug/pprof/heap: %v %.200q", err, r.body)
	}
	if r, err := get(private + "/debug/gate"); err != nil || r.body != "gate" {
		t.Fatalf("part admin handler: %v %q", err, r.body)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	if _, err := get(base + "/healthz"); err == nil {
		t.Fatal("public admin listener still answers after shutdown")
	}
	if _, err := get(private + "/metrics"); err == nil {
		t.Fatal("private admin listener still answers after shutdown")
	}
}

func TestPreloadOnlyIntoEmptyStore(t *testing.T) {
	cli, e := etcdtest.Start(t)
	ep := etcdtest.ClientURL(e)
	st := store.New(cli, store.Options{Logger: quietLogger()})
	ctx := context.Background()

	run := func(dir string) {
		cfg := testConfig(t)
		cfg.EtcdEndpoints, cfg.Preload = []string{ep}, dir
		stop := startRun(t, cfg)
		eventually(t, "http://"+cfg.AdminListen+"/readyz", "ready", func(r httpResult) bool { return r.code == 200 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	run("testdata/preload-a")
	recs, err := st.AuditList(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Label != PreloadActor {
		t.Fatalf("audit of preloaded tenant = %+v", recs)
	}
	// The store holds tenants now: another preload does nothing.
	run("testdata/preload-b")
	if _, err := st.Get(ctx, tenants.KindTenant, "tenant-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("preload into a non-empty store applied tenant-b: %v", err)
	}
}

func TestReadyzExplainsUnreachableEtcd(t *testing.T) {
	cfg := testConfig(t)
	cfg.EtcdEndpoints = []string{freeAddr(t)}
	startRun(t, cfg)
	admin := cfg.AdminListen
	eventually(t, "http://"+admin+"/healthz", "200", func(r httpResult) bool { return r.code == 200 })
	eventually(t, "http://"+admin+"/readyz", "503 explaining the store is not synced", func(r httpResult) bool {
		return r.code == 503 && strings.Contains(r.body, "not synced with etcd yet") && strings.Contains(r.body, "etcd is unreachable at")
	})
}

func TestPreloadRefusesInvalidManifests(t *testing.T) {
	_, e := etcdtest.Start(t)
	dir := t.TempDir()
	if err := writeFile(dir+"/bad.yaml", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: Bad_Name}\n"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.EtcdEndpoints, cfg.Preload = []string{etcdtest.ClientURL(e)}, dir
	err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("Run with an invalid preload: %v", err)
	}
}
