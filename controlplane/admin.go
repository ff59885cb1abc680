package controlplane

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// admin holds the admin endpoints. It answers /healthz from the start;
// /readyz turns ready once every part is. serveAdmin splits mux over the
// public listener (publicAdminPaths) and the private one (/metrics,
// /debug/*).
type admin struct {
	mux   *http.ServeMux
	log   *slog.Logger
	mu    sync.Mutex
	parts []Part
	watch *storeWatch
}

func newAdmin(reg *prometheus.Registry, log *slog.Logger) *admin {
	a := &admin{mux: http.NewServeMux(), log: log}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write([]byte("ok\n"))
		a.logWriteError("/healthz", err)
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("GET /debug/catalog", a.debugCatalog)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Go's profiles, for "why is serve this big / this slow" on a live
	// fleet (heap: /debug/pprof/heap?gc=1). Private listener only, like
	// the catalog.
	a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return a
}

func (a *admin) logWriteError(path string, err error) {
	if err != nil {
		a.log.Debug("admin response not written", "path", path, "error", err)
	}
}

// setParts makes the parts visible to /readyz; until then it reports the
// control plane as starting.
func (a *admin) setParts(parts []Part, watch *storeWatch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parts, a.watch = parts, watch
}

// CheckResult is one entry of /readyz.
type CheckResult struct {
	Ready  bool   `json:"ready"`
	Detail string `json:"detail,omitempty"`
}

// Readiness is the /readyz body.
type Readiness struct {
	Ready  bool                   `json:"ready"`
	Checks map[string]CheckResult `json:"checks"`
}

func (a *admin) readiness() Readiness {
	a.mu.Lock()
	parts := a.parts
	a.mu.Unlock()
	r := Readiness{Ready: len(parts) > 0, Checks: map[string]CheckResult{}}
	if len(parts) == 0 {
		r.Checks["startup"] = CheckResult{Detail: "connecting to etcd"}
	}
	for _, p := range parts {
		c := CheckResult{Ready: true}
		if err := p.Ready(); err != nil {
			c = CheckResult{Detail: err.Error()}
			r.Ready = false
		} else if d, ok := p.(Degrader); ok {
			if err := d.Degraded(); err != nil {
				c.Detail = err.Error()
			}
		}
		r.Checks[p.Name()] = c
	}
	return r
}

func (a *admin) readyz(w http.ResponseWriter, _ *http.Request) {
	r := a.readiness()
	w.Header().Set("Content-Type", "application/json")
	if !r.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	a.logWriteError("/readyz", json.NewEncoder(w).Encode(r))
}

// catalogSummary is the /debug/catalog body: enough to see what the
// control plane serves without dumping secrets or whole manifests.
type catalogSummary struct {
	Revision int64             `json:"revision"`
	Tenants  []tenantSummary   `json:"tenants"`
	Tiers    []string          `json:"tiers"`
	Rejected map[string]string `json:"rejected,omitempty"`
}

type tenantSummary struct {
	ID     string   `json:"id"`
	Tier   string   `json:"tier"`
	Status string   `json:"status"`
	Hosts  []string `json:"hosts,omitempty"`
	Routes []string `json:"routes,omitempty"`
}

func (a *admin) debugCatalog(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	watch := a.watch
	a.mu.Unlock()
	var c *tenants.Catalog
	if watch != nil {
		c = watch.Catalog()
	}
	if c == nil {
		http.Error(w, "no catalog yet: not synced with etcd", http.StatusServiceUnavailable)
		return
	}
	s := catalogSummary{Revision: c.Revision(), Tenants: []tenantSummary{}, Rejected: map[string]string{}}
	for _, t := range c.Tenants() {
		ts := tenantSummary{ID: t.ID(), Tier: t.Spec.Tier, Status: string(t.Spec.Status), Hosts: t.Spec.Hosts}
		for _, r := range t.Spec.Routes {
			ts.Routes = append(ts.Routes, r.Name)
		}
		s.Tenants = append(s.Tenants, ts)
	}
	for _, t := range c.Tiers() {
		s.Tiers = append(s.Tiers, t.Metadata.Name)
	}
	sort.Strings(s.Tiers)
	for id, err := range c.Rejected() {
		s.Rejected[id] = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	a.logWriteError("/debug/catalog", enc.Encode(s))
}
