package controlplane

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// Part is a component of `serve` with its own lifecycle, typically a
// server with its own listener (xDS, ext_authz).
//
// A part may also implement Sink (to receive every Catalog), AdminHandler
// (to add endpoints to the admin server) and Degrader.
type Part interface {
	// Name identifies the part in logs and in /readyz.
	Name() string
	// Start runs the part until ctx ends and then shuts it down
	// gracefully; it returns nil on a clean shutdown. An error stops the
	// whole control plane.
	Start(ctx context.Context) error
	// Ready returns nil when the part can serve, else why not. /readyz
	// reports it.
	Ready() error
}

// Sink receives every Catalog the store builds, in order, never
// concurrently, the first one before /readyz turns ready. Update must not
// block for long: while it runs, newer Catalogs are coalesced.
type Sink interface {
	Update(*tenants.Catalog)
}

// AdminHandler is implemented by parts that serve admin endpoints (for
// example /.well-known/jwks.json or /debug/xds). Only the paths listed in
// publicAdminPaths reach the public admin listener; /metrics and /debug/*
// are served on the private one, anything else on neither.
type AdminHandler interface {
	RegisterAdmin(mux *http.ServeMux)
}

// Degrader is implemented by parts that can report a problem that does
// not stop them serving (etcd down while the last Catalog is served):
// /readyz shows it in its detail but stays ready.
type Degrader interface {
	Degraded() error
}

// Env is what a part is built from.
type Env struct {
	Config   Config
	Store    *store.Store
	Client   *clientv3.Client
	Logger   *slog.Logger
	Registry *prometheus.Registry
}

// PartFactory builds a part; it runs after etcd is connected and before
// the watch starts.
type PartFactory func(env *Env) (Part, error)

// builtinParts lists the parts `serve` runs besides etcd, the store and
// the admin server, in start order. This is the one place to register a
// new part: append its factory here, guarded by its Disable switch, e.g.
//
//	if !cfg.DisableXDS {
//		fs = append(fs, func(env *Env) (Part, error) { return xds.NewPart(env...) })
//	}
func builtinParts(cfg Config) []PartFactory {
	var fs []PartFactory
	if !cfg.DisableXDS {
		fs = append(fs, newXDSPart)
	}
	if !cfg.DisableAuthz {
		fs = append(fs, newAuthzPart)
	}
	return fs
}
