package translate

import (
	"fmt"
	"strings"
	"sync"
	"time"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// Translate builds the complete resource set of node's role from the
// Catalog: TranslateTenant for every tenant, then Assemble.
//
// Tenants that fail are left out and reported in TenantErrors; the
// returned Resources are complete and consistent for all the others. The
// error is for the node as a whole (ErrUnsupportedRole, an unusable
// MeshConfig); then there are no Resources.
func Translate(cat *tenants.Catalog, node Node) (*Resources, TenantErrors, error) {
	switch node.Role {
	case RoleSidecar, RoleGRPCServer:
		// Their sets depend on one tenant only (sidecar*.go, shared.go).
		translate := TranslateSidecar
		if node.Role == RoleGRPCServer {
			translate = TranslateGRPCServer
		}
		res, err := translate(cat, node)
		if err != nil {
			return nil, nil, err
		}
		return res, TenantErrors{}, nil
	}
	if err := checkRole(node.Role); err != nil {
		return nil, nil, err
	}
	mesh := cat.Mesh()
	parts := make(map[string]*TenantResources, cat.Len())
	errs := TenantErrors{}
	for _, t := range cat.Tenants() {
		p, err := TranslateTenant(mesh, cat.SharedServices(), t, node.Role)
		if err != nil {
			errs[t.ID()] = err
			continue
		}
		parts[t.ID()] = p
	}
	res, aerrs, err := Assemble(cat, node, parts)
	if err != nil {
		return nil, nil, err
	}
	errs.merge(aerrs)
	return res, errs, nil
}

func checkRole(r Role) error {
	switch r {
	case RoleEdge, RoleGRPC:
		return nil
	case RoleSidecar:
		return fmt.Errorf("%w: %q (per-tenant assembly; use TranslateSidecar)", ErrUnsupportedRole, r)
	}
	return fmt.Errorf("%w: %q", ErrUnsupportedRole, r)
}

// Assemble joins per-tenant parts (keyed by tenant id, as TranslateTenant
// made them for node's role) into the role's full resource set, in the
// Catalog's tenant order. Parts of tenants the Catalog does not hold are
// ignored; tenants without a part are simply absent.
//
// Conflicts only visible across tenants (two tenants claiming the same
// host) leave the later tenant out and report it in TenantErrors: Envoy
// would reject the whole route configuration for a duplicate domain.
func Assemble(cat *tenants.Catalog, node Node, parts map[string]*TenantResources) (*Resources, TenantErrors, error) {
	if err := checkRole(node.Role); err != nil {
		return nil, nil, err
	}
	errs := TenantErrors{}
	var ordered []*TenantResources
	domains := map[string]string{}
	buckets := map[string]string{LocalBucketNotFound: "the catch-all route"}
	for _, id := range cat.TenantIDs() {
		p := parts[id]
		if p == nil {
			continue
		}
		var names []string
		if vh := p.VirtualHost; vh != nil {
			names = vh.Domains
		}
		if d, owner := conflict(domains, names); owner != "" {
			errs[id] = fmt.Errorf("tenant %s: host %q already belongs to tenant %s", id, strings.TrimPrefix(d, "*|"), owner)
			continue
		}
		// Two tenants naming one local bucket would share its tokens.
		bs := bucketNames(p)
		if b, owner := conflict(buckets, bs); owner != "" {
			errs[id] = fmt.Errorf("tenant %s: local rate limit bucket %q already used by %s", id, b, owner)
			continue
		}
		for _, d := range names {
			domains[d] = id
		}
		for _, b := range bs {
			buckets[b] = id
		}
		ordered = append(ordered, p)
	}

	var (
		listeners []*listenerv3.Listener
		routes    []*routev3.RouteConfiguration
		vhosts    []*routev3.VirtualHost
		clusters  []*clusterv3.Cluster
		cla       []*endpointv3.ClusterLoadAssignment
		rls       []*rlsconfv3.RateLimitDescriptor
	)
	for _, p := range ordered {
		listeners = append(listeners, p.Listeners...)
		routes = append(routes, p.RouteConfigs...)
		clusters = append(clusters, p.Clusters...)
		cla = append(cla, p.Endpoints...)
		if p.RateLimit != nil {
			rls = append(rls, p.RateLimit)
		}
	}
	if node.Role == RoleEdge {
		mesh := cat.Mesh()
		local, err := edgeLocalRateLimit(cat, ordered)
		if err != nil {
			return nil, nil, err
		}
		l, err := edgeListener(mesh, local)
		if err != nil {
			return nil, nil, err
		}
		listeners = append(listeners, l)
		served := make([]*tenants.Tenant, len(ordered))
		for i, p := range ordered {
			served[i] = p.tenant(cat)
		}
		// Shared services (shared.go): mounts under /shared/<name>/ and
		// the entitled tenants' alias clusters, of the tenant versions the
		// parts were built from.
		se, err := buildSharedEdge(cat, served)
		if err != nil {
			return nil, nil, err
		}
		clusters = append(clusters, se.clusters...)
		cla = append(cla, se.cla...)
		rc, err := edgeRouteConfig(se.mounts)
		if err != nil {
			return nil, nil, err
		}
		routes = append(routes, rc)
		for _, p := range ordered {
			if p.VirtualHost != nil {
				vhosts = append(vhosts, p.VirtualHost)
			}
		}
		for _, s := range []struct {
			name, addr string
			tls        *tenants.ServiceTLS
		}{
			{AuthzClusterName, mesh.Spec.Authz.Address, mesh.Spec.Authz.TLS},
			{RateLimitClusterName, mesh.Spec.RateLimit.Address, mesh.Spec.RateLimit.TLS},
		} {
			c, err := serviceCluster(s.name, s.addr, s.tls)
			if err != nil {
				return nil, nil, err
			}
			clusters = append(clusters, c)
		}
	}
	sortByName(listeners)
	sortByName(routes)
	sortByName(clusters)
	sortCLAs(cla)
	sortByName(vhosts)
	return &Resources{
		Listeners:    asResources(listeners),
		Routes:       asResources(routes),
		VirtualHosts: asResources(vhosts),
		Clusters:     asResources(clusters),
		Endpoints:    asResources(cla),
		RateLimitConfigs: asResources([]*rlsconfv3.RateLimitConfig{{
			Name:        RateLimitConfigName,
			Domain:      RateLimitDomain,
			Descriptors: rls,
		}}),
	}, errs, nil
}

const second = time.Second

// bucketNames are the local buckets the tenant's routes name.
func bucketNames(p *TenantResources) []string {
	var out []string
	for _, d := range p.LocalRateLimits {
		for _, e := range d.GetEntries() {
			if e.GetKey() == KeyLocalBucket {
				out = append(out, e.GetValue())
			}
		}
	}
	return out
}

func conflict(taken map[string]string, names []string) (string, string) {
	for _, d := range names {
		if owner, ok := taken[d]; ok {
			return d, owner
		}
	}
	return "", ""
}

// edgeListener is listener edge-http with filters ext_authz →
// local_ratelimit → ratelimit (→ router). Authz runs first: the rate
// limits count only authenticated requests, keyed by the tenant authz
// verified, and an unauthenticated flood cannot drain a tenant's quota.
// local is the local rate limit config, which holds every local bucket
// (edgeLocalRateLimit).
func edgeListener(mesh *tenants.MeshConfig, local *localratelimitv3.LocalRateLimit) (*listenerv3.Listener, error) {
	o, err := edgeListenerOptions(mesh, local)
	if err != nil {
		return nil, err
	}
	hcm, err := envoy.EdgeHTTPConnectionManager(o)
	if err != nil {
		return nil, err
	}
	return envoy.HTTPListener(o, hcm)
}

func edgeListenerOptions(mesh *tenants.MeshConfig, local *localratelimitv3.LocalRateLimit) (envoy.HTTPListenerOptions, error) {
	rm, err := resolvedMesh(mesh)
	if err != nil {
		return envoy.HTTPListenerOptions{}, err
	}
	authz, err := envoy.ExtAuthzFilter(AuthzClusterName, rm.AuthzTimeout)
	if err != nil {
		return envoy.HTTPListenerOptions{}, err
	}
	localFilter, err := envoy.LocalRateLimitFilter(local)
	if err != nil {
		return envoy.HTTPListenerOptions{}, err
	}
	global, err := envoy.GlobalRateLimitFilter(envoy.GlobalRateLimitOptions{
		Domain:          RateLimitDomain,
		Cluster:         RateLimitClusterName,
		Timeout:         rm.RateLimitTimeout,
		FailureModeDeny: mesh.Spec.RateLimit.FailureModeDeny,
	})
	if err != nil {
		return envoy.HTTPListenerOptions{}, err
	}
	return envoy.HTTPListenerOptions{
		Name:           EdgeListenerName,
		Address:        "0.0.0.0",
		Port:           mesh.Spec.EdgePort,
		RouteConfig:    EdgeRouteConfigName,
		VirtualHostKey: EdgeVirtualHostKey,
		Filters:        []*hcmv3.HttpFilter{authz, localFilter, global},
	}, nil
}

// edgeFilters are the HTTP filters of edge-http's chain (with the router
// EdgeHTTPConnectionManager appends), which every tenant's virtual host
// is checked against: its typed_per_filter_config must name them. Built
// once per MeshConfig, not once per tenant.
func edgeFilters(mesh *tenants.MeshConfig) (validate.Filters, error) {
	edgeFiltersCache.Lock()
	defer edgeFiltersCache.Unlock()
	if edgeFiltersCache.mesh == mesh {
		return edgeFiltersCache.filters, nil
	}
	// Only the filters' names matter here, not the local limits.
	o, err := edgeListenerOptions(mesh, nil)
	if err != nil {
		return nil, err
	}
	router, err := envoy.RouterFilter()
	if err != nil {
		return nil, err
	}
	f := validate.HTTPFilters(append(append([]*hcmv3.HttpFilter(nil), o.Filters...), router))
	edgeFiltersCache.mesh, edgeFiltersCache.filters = mesh, f
	return f, nil
}

var edgeFiltersCache struct {
	sync.Mutex
	mesh    *tenants.MeshConfig
	filters validate.Filters
}

// edgeRouteConfig is edge-routes. The tenants' virtual hosts are not in
// it: they come by VHDS (one resource per tenant, edge-routes/<id>), so a
// tenant's change never resends the others. What stays inline changes only
// with the mesh or the shared services:
//   - vhost_header EdgeVirtualHostKey, the key the tenants' domains match
//     (see edgeRoutes), and the key removed before going upstream;
//   - the shared virtual host ("*"): the shared services mounted under
//     /shared/<name>/ (a prefix tree on :path, see buildSharedEdge) and a
//     JSON 404 for everything else.
//
// No local rate limit config: its buckets would be rebuilt, full, with the
// route table (localratelimit.go); the routes only name their buckets.
func edgeRouteConfig(sharedMounts map[string]*xdsmatcherv3.Matcher_OnMatch) (*routev3.RouteConfiguration, error) {
	notFound, err := catchAllRoute()
	if err != nil {
		return nil, err
	}
	shared := &routev3.VirtualHost{Name: SharedVirtualHost, Domains: []string{"*"}}
	if len(sharedMounts) == 0 {
		// A match tree needs at least one key.
		shared.Routes = []*routev3.Route{notFound}
	} else {
		onNoMatch, err := envoy.RouteAction(notFound)
		if err != nil {
			return nil, err
		}
		if shared.Matcher, err = envoy.PathPrefixTree(nil, onNoMatch); err != nil {
			return nil, err
		}
		m := shared.Matcher.GetMatcherTree().GetPrefixMatchMap().GetMap()
		for k, om := range sharedMounts {
			m[k] = om
		}
	}
	return &routev3.RouteConfiguration{
		Name:                   EdgeRouteConfigName,
		VirtualHosts:           []*routev3.VirtualHost{shared},
		Vhds:                   &routev3.Vhds{ConfigSource: envoy.ADS()},
		VhostHeader:            EdgeVirtualHostKey,
		RequestHeadersToRemove: []string{EdgeVirtualHostKey},
	}, nil
}

// catchAllRoute answers everything no tenant route matched with a JSON
// 404, without calling ext_authz (there is no tenant to authorize for).
func catchAllRoute() (*routev3.Route, error) {
	p, err := notFoundParts()
	if err != nil {
		return nil, err
	}
	return p.route(CatchAllRouteName, &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}), nil
}

// notFound is what every JSON 404 route shares (the catch-all and each
// tenant's mount guard): built and marshalled once, never mutated.
type notFound struct {
	action  *routev3.Route_DirectResponse
	headers []*corev3.HeaderValueOption
	meta    *corev3.Metadata
	perFilt map[string]*anypb.Any
}

func (n *notFound) route(name string, m *routev3.RouteMatch) *routev3.Route {
	return &routev3.Route{
		Name:                 name,
		Match:                m,
		Action:               n.action,
		ResponseHeadersToAdd: n.headers,
		Metadata:             n.meta,
		TypedPerFilterConfig: n.perFilt,
	}
}

var notFoundParts = sync.OnceValues(func() (*notFound, error) {
	off, err := envoy.ExtAuthzDisabled()
	if err != nil {
		return nil, err
	}
	return &notFound{
		action:  envoy.JSONDirectResponse(404, envoy.ErrorBody("not_found", "no route matches this request")),
		headers: envoy.JSONContentType(),
		meta:    envoy.RouteMetadata(MetadataNamespace, map[string]string{KeyLocalBucket: LocalBucketNotFound, KeyLocalLimit: LocalLimitName(&notFoundLimit)}),
		perFilt: map[string]*anypb.Any{envoy.FilterExtAuthz: off},
	}, nil
})
