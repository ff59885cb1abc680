package translate

import (
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// Rate limits — how tenant limits become Envoy and envoyproxy/ratelimit
// configuration. Local limits (per Envoy): localratelimit.go.
//
// Global limits (fleet-wide, APISIX limit-count) go to envoyproxy/ratelimit.
// There a descriptor key/value pair carries ONE limit and a request's
// descriptor must match the configured tree entry by entry. Tenants can
// have several windows (1000/minute and 20000/hour), so every descriptor
// ends in a window entry:
//   (tenant_id=<id>, window=<unit>)                    tenant quota
//   (tenant_id=<id>, route=<route>, window=<unit>)     route override
// and each route sends one descriptor per window of its limits. tenant_id
// comes from ext_authz's dynamic metadata (the verified tenant), route and
// window are static. A route with its own global limits is counted only
// against them (the override replaces the tenant quota for that route);
// `global: []` on a route exempts it from global limits.

// globalLimits returns the global limits that apply to a route and
// whether they are the route's own.
func globalLimits(t *tenants.Tenant, r *tenants.Route) ([]tenants.GlobalRateLimit, bool) {
	if r.RateLimit != nil && r.RateLimit.Global != nil {
		return r.RateLimit.Global, true
	}
	if t.Spec.RateLimits == nil {
		return nil, false
	}
	return t.Spec.RateLimits.Global, false
}

var rlsUnits = map[tenants.Unit]rlsconfv3.RateLimitUnit{
	tenants.UnitSecond: rlsconfv3.RateLimitUnit_SECOND,
	tenants.UnitMinute: rlsconfv3.RateLimitUnit_MINUTE,
	tenants.UnitHour:   rlsconfv3.RateLimitUnit_HOUR,
	tenants.UnitDay:    rlsconfv3.RateLimitUnit_DAY,
}

// sortedWindows checks and orders limits by window length; two limits on
// one window would need two limits on one descriptor, which
// envoyproxy/ratelimit cannot express.
func sortedWindows(limits []tenants.GlobalRateLimit) ([]tenants.GlobalRateLimit, error) {
	out := append([]tenants.GlobalRateLimit(nil), limits...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Per.Duration() < out[j].Per.Duration() })
	for i, l := range out {
		if _, ok := rlsUnits[l.Per]; !ok {
			return nil, fmt.Errorf("per: unknown unit %q", l.Per)
		}
		if l.Requests <= 0 {
			return nil, fmt.Errorf("requests must be positive (got %d)", l.Requests)
		}
		if i > 0 && out[i-1].Per == l.Per {
			return nil, fmt.Errorf("two global limits per %s; use one limit per window", l.Per)
		}
	}
	return out, nil
}

// globalActions are the route's rate_limits: one descriptor per window.
func globalActions(t *tenants.Tenant, r *tenants.Route) ([]*routev3.RateLimit, error) {
	limits, own := globalLimits(t, r)
	limits, err := sortedWindows(limits)
	if err != nil {
		return nil, fmt.Errorf("global rate limits: %w", err)
	}
	if len(limits) == 0 {
		return nil, nil
	}
	var routeAction *routev3.RateLimit_Action
	if own {
		routeAction = envoy.GenericKeyAction(KeyRoute, r.Name)
	}
	out := make([]*routev3.RateLimit, len(limits))
	for i, l := range limits {
		if own {
			out[i] = envoy.RateLimit(tenantIDAction, routeAction, windowActions[l.Per])
		} else {
			out[i] = envoy.RateLimit(tenantIDAction, windowActions[l.Per])
		}
	}
	return out, nil
}

// The actions every tenant route shares (immutable, so one copy for all
// routes of all tenants instead of one each).
var (
	tenantIDAction = envoy.MetadataAction(ExtAuthzNamespace, contract.KeyTenantID)
	windowActions  = func() map[tenants.Unit]*routev3.RateLimit_Action {
		m := map[tenants.Unit]*routev3.RateLimit_Action{}
		for u := range rlsUnits {
			m[u] = envoy.GenericKeyAction(KeyWindow, string(u))
		}
		return m
	}()
)

func windowDescriptors(limits []tenants.GlobalRateLimit) ([]*rlsconfv3.RateLimitDescriptor, error) {
	limits, err := sortedWindows(limits)
	if err != nil {
		return nil, err
	}
	out := make([]*rlsconfv3.RateLimitDescriptor, len(limits))
	for i, l := range limits {
		out[i] = &rlsconfv3.RateLimitDescriptor{
			Key:   KeyWindow,
			Value: string(l.Per),
			RateLimit: &rlsconfv3.RateLimitPolicy{
				Unit:            rlsUnits[l.Per],
				RequestsPerUnit: uint32(l.Requests),
			},
		}
	}
	return out, nil
}

// globalDescriptor is the tenant's subtree of the RateLimitConfig, nil
// when neither the tenant nor any route has global limits.
func globalDescriptor(t *tenants.Tenant) (*rlsconfv3.RateLimitDescriptor, error) {
	d := &rlsconfv3.RateLimitDescriptor{Key: KeyTenantID, Value: t.ID()}
	if t.Spec.RateLimits != nil {
		w, err := windowDescriptors(t.Spec.RateLimits.Global)
		if err != nil {
			return nil, fmt.Errorf("spec.rateLimits.global: %w", err)
		}
		d.Descriptors = w
	}
	var routes []*rlsconfv3.RateLimitDescriptor
	for i := range t.Spec.Routes {
		r := &t.Spec.Routes[i]
		limits, own := globalLimits(t, r)
		if !own || len(limits) == 0 {
			continue
		}
		w, err := windowDescriptors(limits)
		if err != nil {
			return nil, fmt.Errorf("spec.routes[%d].rateLimit.global: %w", i, err)
		}
		routes = append(routes, &rlsconfv3.RateLimitDescriptor{Key: KeyRoute, Value: r.Name, Descriptors: w})
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].Value < routes[j].Value })
	d.Descriptors = append(d.Descriptors, routes...)
	if len(d.Descriptors) == 0 {
		return nil, nil
	}
	return d, nil
}
