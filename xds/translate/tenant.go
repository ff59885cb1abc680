package translate

import (
	"fmt"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// TranslateTenant turns one defaulted tenant into the resources it
// contributes for role. mesh is the Catalog's defaulted MeshConfig. The
// result depends on nothing else, so it can be cached per
// (*tenants.Tenant, *tenants.MeshConfig) pair. Every returned proto has
// passed ValidateAll; an error (wrapped with the tenant id) means the
// tenant must be left out, never that others are affected.
func TranslateTenant(mesh *tenants.MeshConfig, t *tenants.Tenant, role Role) (*TenantResources, error) {
	out, err := translateTenant(mesh, t, role)
	if err == nil {
		var edge validate.Filters
		if role == RoleEdge {
			edge, err = edgeFilters(mesh)
		}
		if err == nil {
			err = validateParts(out, edge)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.ID(), err)
	}
	out.source = t
	if role == RoleEdge {
		out.entitlement = entitlementKey(t)
	}
	return out, nil
}

func translateTenant(mesh *tenants.MeshConfig, t *tenants.Tenant, role Role) (*TenantResources, error) {
	switch role {
	case RoleEdge:
		return translateEdgeTenant(mesh, t)
	case RoleGRPC:
		return translateGRPCTenant(t)
	case RoleSidecar:
		// A sidecar is translated whole for its one tenant: TranslateSidecar.
		return nil, fmt.Errorf("%w: %q per tenant (use TranslateSidecar)", ErrUnsupportedRole, role)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedRole, role)
	}
}

// translateEdgeTenant builds the tenant's routes (host and path forms),
// clusters, endpoints and rate limit descriptors.
func translateEdgeTenant(mesh *tenants.MeshConfig, t *tenants.Tenant) (*TenantResources, error) {
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	out := &TenantResources{Tenant: t.ID()}
	for i := range t.Spec.Upstreams {
		c, cla, err := edgeCluster(t, &t.Spec.Upstreams[i])
		if err != nil {
			return nil, fmt.Errorf("spec.upstreams[%d] (%s): %w", i, t.Spec.Upstreams[i].Name, err)
		}
		out.Clusters = append(out.Clusters, c)
		if cla != nil {
			out.Endpoints = append(out.Endpoints, cla)
		}
	}
	if err := edgeRoutes(t, mesh.Spec.EdgePort, out); err != nil {
		return nil, err
	}
	local, err := localDescriptors(t)
	if err != nil {
		return nil, err
	}
	out.LocalRateLimits = local
	if vh := out.VirtualHost; vh != nil && len(local) > 0 {
		// The tenant's buckets live on its virtual host: one config
		// instance for both forms of all its routes (docs/ratelimit-local.md).
		cfg, err := localBuckets(local)
		if err != nil {
			return nil, err
		}
		vh.TypedPerFilterConfig = map[string]*anypb.Any{envoy.FilterLocalRateLimit: cfg}
	}
	if out.RateLimit, err = globalDescriptor(t); err != nil {
		return nil, err
	}
	sortByName(out.Clusters)
	sortCLAs(out.Endpoints)
	return out, nil
}

// translateGRPCTenant builds, per upstream, the API listener, route
// configuration, cluster and endpoints a proxyless gRPC client needs to
// dial xds:///<tenant>.<upstream>. The global rate limit descriptor is
// included too: RateLimitConfig is served to whoever asks.
func translateGRPCTenant(t *tenants.Tenant) (*TenantResources, error) {
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	out := &TenantResources{Tenant: t.ID()}
	for i := range t.Spec.Upstreams {
		u := &t.Spec.Upstreams[i]
		if err := grpcUpstream(t, u, out); err != nil {
			return nil, fmt.Errorf("spec.upstreams[%d] (%s): %w", i, u.Name, err)
		}
	}
	var err error
	if out.RateLimit, err = globalDescriptor(t); err != nil {
		return nil, err
	}
	sortByName(out.Listeners)
	sortByName(out.RouteConfigs)
	sortByName(out.Clusters)
	sortCLAs(out.Endpoints)
	return out, nil
}
