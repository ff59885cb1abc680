package translate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// entitlementKey fingerprints what Assemble reads of a tenant to mount
// the shared services for it (buildSharedEdge, edgeRouteConfig): whether
// it is entitled (SharedService.Entitles: its status and features), its
// alias clusters' breakers (SharedService.AliasThresholds:
// maxConcurrentRequests) and its mount routes' rate limits
// (sharedEdgeRoute: the tenant's own global limits, its local limit and
// bucket).
// Two versions with one key get the same mounts and aliases from the same
// shared services. Whatever else those functions come to read of the
// tenant must be added here, or a cache misses the change.
func entitlementKey(t *tenants.Tenant) string {
	features := slices.Compact(slices.Sorted(slices.Values(t.Spec.Features)))
	pseudo := &tenants.Route{} // a mount route has no limits of its own
	global, _ := globalLimits(t, pseudo)
	local, bucket := "", ""
	if l, b := localLimit(t, pseudo); l != nil {
		local, bucket = LocalLimitName(l), b
	}
	return fmt.Sprintf("active=%t features=%s maxConcurrentRequests=%d global=%v local=%q bucket=%q",
		t.Active(), strings.Join(features, ","), t.Spec.MaxConcurrentRequests, global, local, bucket)
}

// SameEntitlements reports whether two translations of a tenant (edge)
// get the same shared-service mounts and alias clusters from the same
// shared services, so a cache may skip rebuilding those when only other
// parts of the tenant changed. Parts not made by TranslateTenant never
// compare equal.
func SameEntitlements(a, b *TenantResources) bool {
	return a != nil && b != nil && a.entitlement != "" && a.entitlement == b.entitlement
}
