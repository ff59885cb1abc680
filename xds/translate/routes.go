package translate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// edgeRoutes builds the tenant's edge virtual host: one per tenant,
// holding both forms of every route, served as its own VHDS resource
// (edge-routes/<id>) so a change to one tenant sends only that tenant.
//
// The edge selects virtual hosts by the key envoy.VirtualHostKeyFormat
// ("<path>|<authority>", RouteConfiguration.vhost_header), so the domains
// are key patterns: "*|<host>" (suffix wildcard) for each host and
// "/tenants/<id>/*" (prefix wildcard) for the path mount. Envoy tries
// suffix wildcards before prefix ones, so a request to a tenant's host
// always gets that tenant's virtual host, whatever its path.
//
// Both forms of a route share everything but match, name and rewrite —
// including the ext_authz per-route config, so authz sees the same
// {tenant_id, route} either way, and the local rate limit bucket.
// Path-form routes come first: their /tenants/<id>/ prefixes are the more
// specific, and a host route "/" must not take a path-form request
// unrewritten. When the tenant has both forms, a guard answers the rest
// of /tenants/<id>/ with a JSON 404 for the same reason. Between those and
// the host routes come the shared-service mounts of the host form
// (tenantSharedRoutes): /shared/ on the tenant's host is the edge's, not
// the tenant's.
func edgeRoutes(t *tenants.Tenant, rt *tenants.ResolvedTenant, edgePort int, shared []*tenants.SharedService, out *TenantResources) error {
	routes := orderedRoutes(rt.Routes)
	var hostRoutes, pathRoutes []*routev3.Route
	meta := map[string]*corev3.Metadata{} // one per bucket, shared by its routes
	for _, rr := range routes {
		r := rr.Route
		shared, err := routeCommon(t, rt, rr, meta)
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		if len(t.Spec.Hosts) > 0 {
			hr := shared.build(HostRouteName(t.ID(), r.Name), envoy.PathMatch(r.Match.PathPrefix, r.Match.Path), "")
			hostRoutes = append(hostRoutes, hr)
		}
		if t.Spec.PathPrefix {
			// The mount point has no trailing slash and every route path
			// starts with one, so /tenants/a/… can never match /tenants/ab/….
			mount := PathPrefix(t.ID())
			m := envoy.PathMatch(prefixed(mount, r.Match.PathPrefix), prefixed(mount, r.Match.Path))
			rewrite := r.Match.PathPrefix
			if r.Match.Path != "" {
				rewrite = r.Match.Path
			}
			pathRoutes = append(pathRoutes, shared.build(PathRouteName(t.ID(), r.Name), m, rewrite))
		}
	}
	var domains []string
	for _, h := range t.Spec.Hosts {
		domains = append(domains, hostKeys(strings.ToLower(h), edgePort)...)
	}
	if t.Spec.PathPrefix {
		domains = append(domains, PathPrefix(t.ID())+"/*")
	}
	if len(domains) == 0 {
		return nil // neither form: the tenant is reachable from nowhere
	}
	sort.Strings(domains)
	all := pathRoutes
	if len(pathRoutes) > 0 && len(hostRoutes) > 0 {
		guard, err := mountGuardRoute(t.ID())
		if err != nil {
			return err
		}
		all = append(all, guard)
	}
	if len(hostRoutes) > 0 {
		sr, err := tenantSharedRoutes(t, shared)
		if err != nil {
			return err
		}
		all = append(all, sr...)
	}
	out.VirtualHost = &routev3.VirtualHost{
		Name:    VirtualHostName(t.ID()),
		Domains: domains,
		Routes:  append(all, hostRoutes...),
	}
	return nil
}

// hostKeys are the virtual host key patterns of one tenant host. The key
// ends in the authority as the client sent it; strip_any_host_port removes
// a port for Host matching, but whether that happens before or after the
// early header mutation that builds the key is not something to depend
// on, so the edge port a client reaching the edge directly puts into Host
// is listed too. Default ports (80, 443) are omitted by clients (RFC 9110
// §7.2), and each extra pattern costs validation at 10,000 tenants.
func hostKeys(host string, edgePort int) []string {
	keys := []string{"*|" + host}
	if edgePort > 0 {
		keys = append(keys, "*|"+host+":"+strconv.Itoa(edgePort))
	}
	return keys
}

// mountGuardRoute answers whatever is under /tenants/<id>/ but matched none
// of the tenant's path-form routes, before its host routes could take it.
// Like the catch-all it needs no authorization and spends only the
// not-found bucket.
func mountGuardRoute(id string) (*routev3.Route, error) {
	p, err := notFoundParts()
	if err != nil {
		return nil, err
	}
	return p.route(MountGuardRouteName(id), &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: PathPrefix(id) + "/"}}), nil
}

func prefixed(mount, p string) string {
	if p == "" {
		return ""
	}
	return mount + p
}

// orderedRoutes sorts a tenant's routes most specific first, because
// Envoy takes the first route that matches: exact paths, then longer
// prefixes before shorter ones (a "/" route listed first would otherwise
// swallow "/api/"), keeping the manifest order among equals. This is the
// longest-match behaviour of APISIX's radix tree.
func orderedRoutes(in []tenants.ResolvedRoute) []*tenants.ResolvedRoute {
	out := make([]*tenants.ResolvedRoute, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Route.Match, out[j].Route.Match
		if (a.Path != "") != (b.Path != "") {
			return a.Path != ""
		}
		return len(a.PathPrefix)+len(a.Path) > len(b.PathPrefix)+len(b.Path)
	})
	return out
}

// routeParts is what both forms of one tenant route share.
type routeParts struct {
	methods    *routev3.HeaderMatcher
	action     *routev3.RouteAction
	perFilter  map[string]*anypb.Any
	meta       *corev3.Metadata
	reqAdd     []*corev3.HeaderValueOption
	reqRemove  []string
	respAdd    []*corev3.HeaderValueOption
	respRemove []string
}

// routeCommon builds the parts of route rr of tenant t (rt resolves t).
func routeCommon(t *tenants.Tenant, rt *tenants.ResolvedTenant, rr *tenants.ResolvedRoute, meta map[string]*corev3.Metadata) (*routeParts, error) {
	r := rr.Route
	body := 0
	if rv := r.RequestValidation; rv != nil {
		body = rv.MaxBodyBytes
	}
	authz, err := envoy.ExtAuthzCheck(map[string]string{KeyTenantID: t.ID(), KeyRoute: r.Name}, body)
	if err != nil {
		return nil, err
	}
	limits, err := globalActions(t, r)
	if err != nil {
		return nil, err
	}
	action := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: ClusterName(t.ID(), r.Upstream)},
		Timeout:          envoy.Duration(rr.Timeout),
		RateLimits:       limits,
	}
	if p := r.Retries; p != nil {
		action.RetryPolicy = envoy.RetryPolicy(p.Attempts, p.On, rr.PerTryTimeout)
	}
	if rt.Priority == tenants.PriorityHigh {
		action.Priority = corev3.RoutingPriority_HIGH
	}
	p := &routeParts{
		methods: envoy.MethodMatcher(r.Match.Methods),
		action:  action,
		// One map for both forms: it is never modified after this.
		perFilter: map[string]*anypb.Any{envoy.FilterExtAuthz: authz},
	}
	p.meta = localMetadata(t, r, meta)
	if h := r.RequestHeaders; h != nil {
		p.reqAdd, p.reqRemove = envoy.HeadersOverwrite(h.Set), envoy.LowerAll(h.Remove)
	}
	if h := r.ResponseHeaders; h != nil {
		p.respAdd, p.respRemove = envoy.HeadersOverwrite(h.Set), envoy.LowerAll(h.Remove)
	}
	return p, nil
}

// build makes one route. rewrite, when set, replaces the matched prefix
// (path form: /tenants/<id>/api/ → /api/).
func (p *routeParts) build(name string, m *routev3.RouteMatch, rewrite string) *routev3.Route {
	if p.methods != nil {
		m.Headers = []*routev3.HeaderMatcher{p.methods}
	}
	// A fresh RouteAction per form (protos must not be copied by value);
	// its parts are shared, they are never mutated.
	a := p.action
	action := &routev3.RouteAction{
		ClusterSpecifier: a.ClusterSpecifier,
		Timeout:          a.Timeout,
		RetryPolicy:      a.RetryPolicy,
		Priority:         a.Priority,
		RateLimits:       a.RateLimits,
		PrefixRewrite:    rewrite,
	}
	return &routev3.Route{
		Name:                    name,
		Match:                   m,
		Action:                  &routev3.Route_Route{Route: action},
		Metadata:                p.meta,
		TypedPerFilterConfig:    p.perFilter,
		RequestHeadersToAdd:     p.reqAdd,
		RequestHeadersToRemove:  p.reqRemove,
		ResponseHeadersToAdd:    p.respAdd,
		ResponseHeadersToRemove: p.respRemove,
	}
}
