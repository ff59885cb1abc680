package translate

import (
	"fmt"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// KeySharedService is the ext_authz context extension of a shared service
// route at the edge: {shared_service: <name>} instead of {tenant_id}.
const KeySharedService = "shared_service"

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

// sharedAliasCluster is tenant t's own cluster for shared service s: the
// service's endpoints and connection settings with circuit breakers of
// the tenant's own (SharedService.AliasThresholds). Envoy counts circuit
// breakers per cluster, so a tenant that fills its max_requests is
// answered 503 (overflow) while the other tenants' aliases are untouched.
func sharedAliasCluster(t *tenants.Tenant, s *tenants.SharedService) (*clusterv3.Cluster, error) {
	u := s.AsUpstream()
	o, err := clusterOptions(t, &u, lbPolicies)
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
	// Shared routes are not HIGH priority; one set of thresholds suffices.
	o.HighPriority = false
	o.Discovery = envoy.StrictDNS
	if allIPs(&u) {
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
func sharedLoadAssignment(s *tenants.SharedService) *endpointv3.ClusterLoadAssignment {
	u := s.AsUpstream()
	if !allIPs(&u) {
		return nil
	}
	return envoy.ClusterLoadAssignment(SharedEDSName(s.Name()), endpoints(&u))
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
		if e := sharedLoadAssignment(s); e != nil {
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
			Timeout:          envoy.Duration(s.Spec.Timeout.Get(tenants.DefaultRouteTimeout)),
			RateLimits:       limits,
		}},
		TypedPerFilterConfig: map[string]*anypb.Any{envoy.FilterExtAuthz: authz},
	}
	if b := localBucket(t, pseudo); b != "" {
		r.Metadata = envoy.RouteMetadata(MetadataNamespace, map[string]string{KeyLocalBucket: b})
	}
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
