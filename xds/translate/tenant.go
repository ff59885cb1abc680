package translate

import (
	"fmt"

	"github.com/tenantmesh/tenantmesh/envoy/validate"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// TranslateTenant turns one tenant of a Catalog (defaulted and resolved:
// tenants.Tenant.Resolved) into the resources it contributes for role.
// mesh is the Catalog's MeshConfig, shared its shared services (the edge mounts those t is entitled to in t's own
// virtual host). The result depends on nothing else, so it can be cached
// per (*tenants.Tenant, *tenants.MeshConfig) pair as long as the shared
// services stay SameSharedRoutes. Every returned proto has
// passed ValidateAll; an error (wrapped with the tenant id) means the
// tenant must be left out, never that others are affected.
func TranslateTenant(mesh *tenants.MeshConfig, shared []*tenants.SharedService, t *tenants.Tenant, role Role) (*TenantResources, error) {
	out, err := translateTenant(mesh, shared, t, role)
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

func translateTenant(mesh *tenants.MeshConfig, shared []*tenants.SharedService, t *tenants.Tenant, role Role) (*TenantResources, error) {
	switch role {
	case RoleEdge:
		return translateEdgeTenant(mesh, shared, t)
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
func translateEdgeTenant(mesh *tenants.MeshConfig, shared []*tenants.SharedService, t *tenants.Tenant) (*TenantResources, error) {
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	rt, err := resolvedTenant(t)
	if err != nil {
		return nil, err
	}
	out := &TenantResources{Tenant: t.ID()}
	for i := range rt.Upstreams {
		c, cla, err := edgeCluster(t, rt, &rt.Upstreams[i])
		if err != nil {
			return nil, fmt.Errorf("spec.upstreams[%d] (%s): %w", i, t.Spec.Upstreams[i].Name, err)
		}
		out.Clusters = append(out.Clusters, c)
		if cla != nil {
			out.Endpoints = append(out.Endpoints, cla)
		}
	}
	if err := edgeRoutes(t, rt, mesh.Spec.EdgePort, shared, out); err != nil {
		return nil, err
	}
	local, err := localDescriptors(t)
	if err != nil {
		return nil, err
	}
	// The buckets themselves live in edge-http's filter config, not in the
	// virtual host: a route table rebuild would refill them
	// (localratelimit.go); Assemble lists the limits these name.
	out.LocalRateLimits = local
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
	rt, err := resolvedTenant(t)
	if err != nil {
		return nil, err
	}
	out := &TenantResources{Tenant: t.ID()}
	for i := range rt.Upstreams {
		ru := &rt.Upstreams[i]
		if err := grpcUpstream(t, rt, ru, out); err != nil {
			return nil, fmt.Errorf("spec.upstreams[%d] (%s): %w", i, ru.Upstream.Name, err)
		}
	}
	if out.RateLimit, err = globalDescriptor(t); err != nil {
		return nil, err
	}
	sortByName(out.Listeners)
	sortByName(out.RouteConfigs)
	sortByName(out.Clusters)
	sortCLAs(out.Endpoints)
	return out, nil
}
