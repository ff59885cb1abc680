package tenants

import "time"

// The manifest types (Tenant, MeshConfig, SharedService) are what users
// write: decoded strictly, validated, printed back by `tenant get`. What
// translation needs goes further, and is computed once, when the Catalog
// admits an object: DefaultedTenant, DefaultedMeshConfig and
// DefaultedSharedService fill every unset field of a copy and attach a
// resolved view holding what a manifest type cannot: durations as
// time.Duration, and values taken from other objects (the tier's routing
// priority). Translation reads the defaulted copy and its resolved view;
// it applies no default and parses no duration of its own.
//
// A resolved view belongs to the one object it was computed for: a copy
// of that object (changed or not) has none, so it cannot be translated
// with values that no longer match it — admit the copy instead.

// ResolvedTenant is what admission resolved for one tenant.
type ResolvedTenant struct {
	of *Tenant
	// Priority is the routing priority of the tenant's routes, from its tier.
	Priority Priority
	// Routes[i] resolves Spec.Routes[i], Upstreams[i] Spec.Upstreams[i].
	Routes    []ResolvedRoute
	Upstreams []ResolvedUpstream
}

// ResolvedRoute is one defaulted route with its durations.
type ResolvedRoute struct {
	Route   *Route // in the defaulted tenant's Spec.Routes
	Timeout time.Duration
	// PerTryTimeout bounds each attempt of Route.Retries; 0: the route
	// timeout is the only bound.
	PerTryTimeout time.Duration
}

// ResolvedUpstream is one defaulted upstream (a tenant's, or a shared
// service's connection settings) with its durations.
type ResolvedUpstream struct {
	Upstream       *Upstream
	ConnectTimeout time.Duration
	// HealthCheckInterval and HealthCheckTimeout are set when
	// Upstream.HealthCheck is.
	HealthCheckInterval, HealthCheckTimeout time.Duration
	// OutlierInterval and OutlierBaseEjectionTime are set when
	// Upstream.OutlierDetection is.
	OutlierInterval, OutlierBaseEjectionTime time.Duration
}

// ResolvedMesh is what admission resolved for the MeshConfig.
type ResolvedMesh struct {
	of                             *MeshConfig
	AuthzTimeout, RateLimitTimeout time.Duration
	// SidecarRouteTimeout and SidecarAppConnectTimeout are for what a
	// sidecar routes that no manifest configures (the route to its local
	// application, its outbound routes to the tenant's upstreams, the
	// application's cluster): they get what a tenant route and upstream
	// that set nothing get.
	SidecarRouteTimeout      time.Duration
	SidecarAppConnectTimeout time.Duration
}

// ResolvedSharedService is what admission resolved for a shared service.
type ResolvedSharedService struct {
	of      *SharedService
	Timeout time.Duration
	// Upstream is the service's connection settings as an upstream named
	// after the service, defaulted like a tenant's. It has no circuit
	// breaker: those are per tenant (SharedService.AliasThresholds).
	Upstream ResolvedUpstream
}

// Resolved returns what admission resolved for t; ok is false when t did
// not come out of DefaultedTenant (a Catalog), e.g. a copy of a tenant
// that did.
func (t *Tenant) Resolved() (r *ResolvedTenant, ok bool) {
	if r := t.resolved; r != nil && r.of == t {
		return r, true
	}
	return nil, false
}

// Resolved returns what admission resolved for m; ok is false when m did
// not come out of DefaultedMeshConfig (a Catalog).
func (m *MeshConfig) Resolved() (r *ResolvedMesh, ok bool) {
	if r := m.resolved; r != nil && r.of == m {
		return r, true
	}
	return nil, false
}

// Resolved returns what admission resolved for s; ok is false when s did
// not come out of DefaultedSharedService (a Catalog).
func (s *SharedService) Resolved() (r *ResolvedSharedService, ok bool) {
	if r := s.resolved; r != nil && r.of == s {
		return r, true
	}
	return nil, false
}
