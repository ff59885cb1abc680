package translate

import (
	"fmt"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// edgeRoutes builds the tenant's virtual host (when it has hosts) and its
// /tenants/<id> routes (when pathPrefix is on). Both forms of a route share
// everything but match, name and rewrite — including the ext_authz
// per-route config, so authz sees the same {tenant_id, route} either way.
func edgeRoutes(t *tenants.Tenant, out *TenantResources) error {
	routes := orderedRoutes(t.Spec.Routes)
	var hostRoutes []*routev3.Route
	meta := map[string]*corev3.Metadata{} // one per bucket, shared by its routes
	for _, r := range routes {
		shared, err := routeCommon(t, r, meta)
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
			out.PathRoutes = append(out.PathRoutes, shared.build(PathRouteName(t.ID(), r.Name), m, rewrite))
		}
	}
	if len(t.Spec.Hosts) > 0 {
		domains := make([]string, len(t.Spec.Hosts))
		for i, h := range t.Spec.Hosts {
			domains[i] = strings.ToLower(h)
		}
		sort.Strings(domains)
		out.VirtualHost = &routev3.VirtualHost{
			Name:    VirtualHostName(t.ID()),
			Domains: domains,
			Routes:  hostRoutes,
		}
	}
	return nil
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
func orderedRoutes(in []tenants.Route) []*tenants.Route {
	out := make([]*tenants.Route, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Match, out[j].Match
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

func routeCommon(t *tenants.Tenant, r *tenants.Route, meta map[string]*corev3.Metadata) (*routeParts, error) {
	body := 0
	if rv := r.RequestValidation; rv != nil {
		body = rv.MaxBodyBytes
		if body <= 0 {
			body = tenants.DefaultMaxBodyBytes
		}
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
		Timeout:          envoy.Duration(r.Timeout.Get(tenants.DefaultRouteTimeout)),
		RateLimits:       limits,
	}
	if rt := r.Retries; rt != nil {
		action.RetryPolicy = envoy.RetryPolicy(rt.Attempts, rt.On, rt.PerTryTimeout.Get(0))
	}
	if t.Spec.Priority == tenants.PriorityHigh {
		action.Priority = corev3.RoutingPriority_HIGH
	}
	p := &routeParts{
		methods: envoy.MethodMatcher(r.Match.Methods),
		action:  action,
		// One map for both forms: it is never modified after this.
		perFilter: map[string]*anypb.Any{envoy.FilterExtAuthz: authz},
	}
	if b := localBucket(t, r); b != "" {
		if meta[b] == nil {
			meta[b] = envoy.RouteMetadata(MetadataNamespace, map[string]string{KeyLocalBucket: b})
		}
		p.meta = meta[b]
	}
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
