package translate

import (
	"fmt"
	"slices"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// KeySharedService is the ext_authz context extension of a shared service
// route at the edge: {shared_service: <name>} instead of {tenant_id}.
const KeySharedService = contract.ExtSharedService

// SharedClusterName is tenant's alias cluster of a shared service,
// "<tenant>.shared.<name>". It starts with the tenant id (a NACK is traced
// to the tenant) and has two dots, so it never equals a tenant upstream
// cluster "<tenant>.<upstream>" (upstream names are DNS labels).
func SharedClusterName(tenant, name string) string { return tenant + ".shared." + name }

// SharedEDSName is the EDS service name every alias of a shared service
// shares: one ClusterLoadAssignment, "shared/<name>", feeds all tenants'
// aliases, so an endpoint change is one update whatever the tenant count.
// The "/" keeps it apart from any cluster name.
func SharedEDSName(name string) string { return "shared/" + name }

// SharedPathPrefix is where a shared service is mounted at the edge.
func SharedPathPrefix(name string) string { return "/shared/" + name + "/" }

// SharedRouteName is the edge route of tenant's calls to a shared service.
func SharedRouteName(tenant, name string) string { return tenant + "/shared/" + name }

// SharedGuardRouteName is the JSON 404 for the rest of /shared/ on a
// tenant's own host (services it is not entitled to, unknown names).
func SharedGuardRouteName(tenant string) string { return tenant + "/shared" }

// sharedMountRoot is the prefix every shared service mount lives under.
const sharedMountRoot = "/shared/"

// SameSharedRoutes reports whether two lists of shared services (sorted
// by name, as the Catalog keeps them) give every tenant the same
// shared-service routes in its own virtual host: same names, timeouts
// and features. Only then can a tenant's earlier translation be kept when
// the shared services change; an endpoint, breaker or health check
// change only touches the alias clusters, which Assemble builds. A
// service that was not admitted by a Catalog has no resolved timeout to
// compare and counts as changed.
func SameSharedRoutes(a, b []*tenants.SharedService) bool {
	return slices.EqualFunc(a, b, func(x, y *tenants.SharedService) bool {
		if x == y {
			return true
		}
		rx, okx := x.Resolved()
		ry, oky := y.Resolved()
		return okx && oky && x.Name() == y.Name() && rx.Timeout == ry.Timeout && slices.Equal(x.Spec.Features, y.Spec.Features)
	})
}

// tenantSharedRoutes are the /shared/<name>/ mounts inside tenant t's own
// virtual host. A request to a tenant's host always selects that tenant's
// virtual host, whatever its path (edgeRoutes), so the mounts of the shared
// virtual host are never reached from there; without these routes a
// tenant route on "/" would send /shared/… to the tenant's own upstream.
//
// Per service t is entitled to: the route to t's alias, matching only
// once x-tenant-id is t, and a 403 for any other tenant. Both carry
// ext_authz {shared_service: <name>}: whichever is selected before authz
// (by the client's x-tenant-id hint), authz identifies the caller from its
// credential, checks the entitlement and overwrites x-tenant-id; the
// edge's ext_authz filter clears the route cache, so the route is then
// chosen on the verified tenant (ext_authz.cc, Filter::onComplete:
// clearRouteCache). A caller of another tenant on t's host gets the 403,
// never t's alias (which would spend t's breakers and quotas). After them,
// a JSON 404 takes the rest of /shared/ (services t is not entitled to)
// before t's own routes can. The service's timeout and features are part
// of these routes: a change to them, or a service added or removed,
// resends the virtual hosts of the tenants it concerns (SameSharedRoutes).
func tenantSharedRoutes(t *tenants.Tenant, shared []*tenants.SharedService) ([]*routev3.Route, error) {
	var out []*routev3.Route
	self := envoy.ExactHeaderMatcher(TenantHeader, t.ID())
	for _, s := range shared {
		if !s.Entitles(t) {
			continue
		}
		authz, err := envoy.ExtAuthzCheck(map[string]string{KeySharedService: s.Name()}, 0)
		if err != nil {
			return nil, err
		}
		r, err := sharedEdgeRoute(t, s, authz)
		if err != nil {
			return nil, fmt.Errorf("shared service %s: %w", s.Name(), err)
		}
		r.Match.Headers = []*routev3.HeaderMatcher{self}
		out = append(out, r, &routev3.Route{
			Name:                 SharedRouteName(t.ID(), s.Name()) + "/other-tenant",
			Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: SharedPathPrefix(s.Name())}},
			Action:               envoy.JSONDirectResponse(403, envoy.ErrorBody("cross_tenant", "this host belongs to another tenant")),
			ResponseHeadersToAdd: envoy.JSONContentType(),
			TypedPerFilterConfig: map[string]*anypb.Any{envoy.FilterExtAuthz: authz},
		})
	}
	p, err := notFoundParts()
	if err != nil {
		return nil, err
	}
	return append(out, p.route(SharedGuardRouteName(t.ID()), &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: sharedMountRoot}})), nil
}

// sharedAliasCluster is tenant t's own cluster for shared service s: the
// service's endpoints and connection settings with circuit breakers of
// the tenant's own (SharedService.AliasThresholds). Envoy counts circuit
// breakers per cluster, so a tenant that fills its max_requests is
// answered 503 (overflow) while the other tenants' aliases are untouched.
func sharedAliasCluster(t *tenants.Tenant, s *tenants.SharedService) (*clusterv3.Cluster, error) {
	rs, err := resolvedShared(s)
	if err != nil {
		return nil, err
	}
	// Shared routes are not HIGH priority; one set of thresholds suffices.
	o, err := clusterOptions(t, &rs.Upstream, false, lbPolicies)
	if err != nil {
		return nil, fmt.Errorf("shared service %s: %w", s.Name(), err)
	}
	o.Name = SharedClusterName(t.ID(), s.Name())
	cb := s.AliasThresholds(t)
	o.CircuitBreaker = &envoy.Thresholds{
		MaxConnections: cb.MaxConnections, MaxPendingRequests: cb.MaxPendingRequests,
		MaxRequests: cb.MaxRequests, MaxRetries: cb.MaxRetries,
	}
	if *o.CircuitBreaker == (envoy.Thresholds{}) {
		o.CircuitBreaker = nil
	}
	o.Discovery = envoy.StrictDNS
	if allIPs(rs.Upstream.Upstream) {
		o.Discovery = envoy.EDS
	}
	c, err := envoy.Cluster(o)
	if err != nil {
		return nil, err
	}
	if o.Discovery == envoy.EDS {
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: envoy.ADS(), ServiceName: SharedEDSName(s.Name())}
	}
	return c, nil
}

// sharedLoadAssignment is the one ClusterLoadAssignment of a shared
// service with IP endpoints (nil for DNS endpoints, resolved per alias).
func sharedLoadAssignment(s *tenants.SharedService) (*endpointv3.ClusterLoadAssignment, error) {
	rs, err := resolvedShared(s)
	if err != nil {
		return nil, err
	}
	u := rs.Upstream.Upstream
	if !allIPs(u) {
		return nil, nil
	}
	return envoy.ClusterLoadAssignment(SharedEDSName(s.Name()), endpoints(u)), nil
}

// sharedEdge is what the shared services add to the edge: per service a
// mount under /shared/<name>/ for the shared virtual host's match tree,
// and per entitled tenant an alias cluster.
type sharedEdge struct {
	mounts   map[string]*xdsmatcherv3.Matcher_OnMatch
	clusters []*clusterv3.Cluster
	cla      []*endpointv3.ClusterLoadAssignment
}

// buildSharedEdge mounts every shared service at the edge for the given
// tenant versions (those Assemble kept, as their parts were built from).
//
// How a request finds its tenant's alias: ext_authz runs on every route
// under /shared/<name>/ with context extension {shared_service: <name>};
// it identifies the caller's tenant from the credential, checks the
// entitlement and, on allow, overwrites x-tenant-id. The edge's ext_authz
// filter has clear_route_cache on, so Envoy then selects the route again,
// now on the verified header: a nested matcher on x-tenant-id (an exact
// map, O(1) whatever the tenant count) picks the tenant's route to
// <tenant>.shared.<name>. Before authz the client's own x-tenant-id (or
// none) selects the route; that route only decides which per-route authz
// config runs, and every route of the mount carries the same one. A
// request that authz allowed but whose tenant has no route (the catalog
// changed in between) hits the fallback and is refused, never served
// through somebody else's alias.
func buildSharedEdge(cat *tenants.Catalog, served []*tenants.Tenant) (*sharedEdge, error) {
	out := &sharedEdge{mounts: map[string]*xdsmatcherv3.Matcher_OnMatch{}}
	input, err := envoy.Any(&matcherv3.HttpRequestHeaderMatchInput{HeaderName: TenantHeader})
	if err != nil {
		return nil, err
	}
	for _, s := range cat.SharedServices() {
		authz, err := envoy.ExtAuthzCheck(map[string]string{KeySharedService: s.Name()}, 0)
		if err != nil {
			return nil, err
		}
		fallback, err := sharedFallbackRoute(s, authz)
		if err != nil {
			return nil, err
		}
		fa, err := envoy.RouteAction(fallback)
		if err != nil {
			return nil, err
		}
		byTenant := map[string]*xdsmatcherv3.Matcher_OnMatch{}
		for _, t := range served {
			if !s.Entitles(t) {
				continue
			}
			id := t.ID()
			c, err := sharedAliasCluster(t, s)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: %w", id, err)
			}
			r, err := sharedEdgeRoute(t, s, authz)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: %w", id, err)
			}
			a, err := envoy.RouteAction(r)
			if err != nil {
				return nil, err
			}
			out.clusters = append(out.clusters, c)
			byTenant[id] = &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: a}}
		}
		if len(byTenant) == 0 {
			// A match map needs at least one entry; nobody is entitled.
			out.mounts[SharedPathPrefix(s.Name())] = &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: fa}}
			continue
		}
		e, err := sharedLoadAssignment(s)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out.cla = append(out.cla, e)
		}
		out.mounts[SharedPathPrefix(s.Name())] = &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Matcher{Matcher: &xdsmatcherv3.Matcher{
			MatcherType: &xdsmatcherv3.Matcher_MatcherTree_{MatcherTree: &xdsmatcherv3.Matcher_MatcherTree{
				Input:    &xdscorev3.TypedExtensionConfig{Name: "request-headers", TypedConfig: input},
				TreeType: &xdsmatcherv3.Matcher_MatcherTree_ExactMatchMap{ExactMatchMap: &xdsmatcherv3.Matcher_MatcherTree_MatchMap{Map: byTenant}},
			}},
			OnNoMatch: &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: fa}},
		}}}
	}
	return out, nil
}

// sharedEdgeRoute is tenant t's route to its alias of s: the mount prefix
// is replaced by "/", and the tenant's own rate limits apply (its local
// bucket, its global descriptors) — calls to shared services count
// against the caller's quotas like calls to its own routes.
func sharedEdgeRoute(t *tenants.Tenant, s *tenants.SharedService, authz *anypb.Any) (*routev3.Route, error) {
	rs, err := resolvedShared(s)
	if err != nil {
		return nil, err
	}
	pseudo := &tenants.Route{Name: "shared." + s.Name()}
	limits, err := globalActions(t, pseudo)
	if err != nil {
		return nil, err
	}
	r := &routev3.Route{
		Name:  SharedRouteName(t.ID(), s.Name()),
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: SharedPathPrefix(s.Name())}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: SharedClusterName(t.ID(), s.Name())},
			PrefixRewrite:    "/",
			Timeout:          envoy.Duration(rs.Timeout),
			RateLimits:       limits,
		}},
		TypedPerFilterConfig: map[string]*anypb.Any{envoy.FilterExtAuthz: authz},
	}
	// The tenant's own bucket (docs/ratelimit-local.md): the same
	// (local_limit, local_bucket) as its routes, so the same token bucket.
	r.Metadata = localMetadata(t, pseudo, nil)
	return r, nil
}

// sharedFallbackRoute answers 403 for a request authz allowed but no
// tenant route matched afterwards; it still carries the authz config, so
// the request is authorized (and its tenant identified) before it ends.
func sharedFallbackRoute(s *tenants.SharedService, authz *anypb.Any) (*routev3.Route, error) {
	return &routev3.Route{
		Name:                 "shared/" + s.Name() + "/not-entitled",
		Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: SharedPathPrefix(s.Name())}},
		Action:               envoy.JSONDirectResponse(403, envoy.ErrorBody("not_entitled", "the tenant may not call this shared service")),
		ResponseHeadersToAdd: envoy.JSONContentType(),
		TypedPerFilterConfig: map[string]*anypb.Any{envoy.FilterExtAuthz: authz},
	}, nil
}
