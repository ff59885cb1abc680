package translate

import (
	"errors"
	"slices"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// ErrUnsupportedRole is returned for unknown roles, and for the roles a
// function does not translate: sidecar and grpc-server nodes are
// translated whole (TranslateSidecar, TranslateGRPCServer), never per
// tenant or by Assemble.
var ErrUnsupportedRole = errors.New("node role not supported")

// TenantResources is everything one tenant contributes for one role. The
// xds layer caches it per tenant (keyed by the *tenants.Tenant pointer and
// the mesh pointer) and re-translates only changed tenants. It must be
// treated as immutable once returned.
type TenantResources struct {
	Tenant string
	// VirtualHost (edge) is the tenant's virtual host with both forms of
	// its routes (edgeRoutes), served by VHDS as edge-routes/<id>; nil when
	// the tenant has neither hosts nor pathPrefix.
	VirtualHost *routev3.VirtualHost
	Clusters    []*clusterv3.Cluster
	// Endpoints are the ClusterLoadAssignments of the tenant's EDS clusters.
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Listeners and RouteConfigs (grpc) are the API listeners and route
	// configurations named <tenant>.<upstream>.
	Listeners    []*listenerv3.Listener
	RouteConfigs []*routev3.RouteConfiguration
	// RateLimit is the tenant_id=<id> descriptor of the RateLimitConfig,
	// nil when the tenant has no global limits.
	RateLimit *rlsconfv3.RateLimitDescriptor
	// LocalRateLimits (edge) are the tenant's local token buckets: one for
	// the tenant, one per route with its own local limit. They are the
	// local rate limit config of VirtualHost, and Assemble repeats those of
	// tenants entitled to a shared service in edge-routes (the mounts).
	LocalRateLimits []*ratelimitcommonv3.LocalRateLimitDescriptor

	// source is the tenant object TranslateTenant built the part from.
	// Assemble reads the tenant's shared-service entitlements from it, not
	// from the Catalog: a cache may hold an older version of the tenant
	// than the Catalog does (the Catalog's was rejected by a proxy, or
	// does not translate), and its alias clusters must be of that version.
	source *tenants.Tenant
	// entitlement (edge) is entitlementKey(source): see SameEntitlements.
	entitlement string
}

// tenant is the tenant object p was translated from: its source, or the
// Catalog's version for a part not made by TranslateTenant.
func (p *TenantResources) tenant(cat *tenants.Catalog) *tenants.Tenant {
	if p.source != nil {
		return p.source
	}
	t, _ := cat.Tenant(p.Tenant)
	return t
}

// Resources is a role's complete resource set. Each slice is sorted by
// resource name, so equal inputs give equal output.
type Resources struct {
	Listeners, Routes, Clusters, Endpoints, RateLimitConfigs []types.Resource
	// VirtualHosts (edge) are the tenants' VHDS virtual hosts of edge-routes.
	VirtualHosts []types.Resource
}

// ByType returns the resources keyed by type URL, the shape
// cache.NewSnapshot and LinearCache want. Empty types are present with an
// empty slice so a cache clears what the node had.
func (r *Resources) ByType() map[resource.Type][]types.Resource {
	return map[resource.Type][]types.Resource{
		resource.ListenerType:    r.Listeners,
		resource.RouteType:       r.Routes,
		resource.ClusterType:     r.Clusters,
		resource.EndpointType:    r.Endpoints,
		resource.VirtualHostType: r.VirtualHosts,
		RateLimitConfigType:      r.RateLimitConfigs,
	}
}

// TenantErrors are the tenants left out of a translation, by id. The rest
// of the result is complete and usable.
type TenantErrors map[string]error

// Error lists the failures sorted by tenant id.
func (e TenantErrors) Error() string {
	ids := make([]string, 0, len(e))
	for id := range e {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	msgs := make([]string, len(ids))
	for i, id := range ids {
		msgs[i] = e[id].Error()
	}
	return strings.Join(msgs, "; ")
}

// Err returns nil when there are no failures, so callers can write
// `if err := errs.Err(); err != nil`.
func (e TenantErrors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

func (e TenantErrors) merge(o TenantErrors) {
	for id, err := range o {
		e[id] = err
	}
}

type named interface{ GetName() string }

func sortByName[T named](s []T) {
	sort.Slice(s, func(i, j int) bool { return s[i].GetName() < s[j].GetName() })
}

func sortCLAs(s []*endpointv3.ClusterLoadAssignment) {
	sort.Slice(s, func(i, j int) bool { return s[i].GetClusterName() < s[j].GetClusterName() })
}

func asResources[T types.Resource](s []T) []types.Resource {
	out := make([]types.Resource, len(s))
	for i, r := range s {
		out[i] = r
	}
	return out
}

// SameAggregateInputs reports whether two translations of a tenant feed
// the shared aggregates identically, so a cache may skip rebuilding them:
// the domains of its virtual host (unique across tenants, which only the
// whole set can check), its local buckets (repeated in edge-routes for
// shared-service mounts) and its RateLimitConfig descriptor. The virtual
// host itself is the tenant's own resource and not an input.
func SameAggregateInputs(a, b *TenantResources) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.VirtualHost.GetDomains(), b.VirtualHost.GetDomains()) &&
		(a.VirtualHost == nil) == (b.VirtualHost == nil) &&
		slices.EqualFunc(a.LocalRateLimits, b.LocalRateLimits, func(x, y *ratelimitcommonv3.LocalRateLimitDescriptor) bool { return proto.Equal(x, y) }) &&
		proto.Equal(a.RateLimit, b.RateLimit)
}
