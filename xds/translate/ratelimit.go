package translate

import (
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// Rate limits — how tenant limits become Envoy and envoyproxy/ratelimit
// configuration.
//
// Local limits (per Envoy, APISIX limit-req). Envoy's local_ratelimit
// filter creates one limiter, with its own token buckets, per per-filter
// config *instance* (FilterConfig in local_ratelimit.cc); the same bytes
// on two routes are two instances and two buckets. A tenant reachable by
// host (its own virtual host) and by path (the shared one) would get one
// bucket per route and form, i.e. several times its limit. So there is
// exactly one instance: the local rate limit config in edge-routes'
// RouteConfiguration typed_per_filter_config, which every route inherits.
// It holds one descriptor per bucket:
//   - local_bucket=<tenant>          the tenant's limit, shared by all of
//     its routes in both virtual hosts;
//   - local_bucket=<tenant>/<route>  a route with its own local limit (it
//     replaces the tenant bucket for that route, again for both forms);
//   - local_bucket=_not-found        the catch-all 404 ("_" cannot occur
//     in a tenant id, so no tenant bucket can collide with it).
// Each route names its bucket in route metadata tenantmesh:local_bucket,
// and the config's rate_limits action reads it (metadata action, source
// ROUTE_ENTRY), so a request produces exactly one descriptor. Routes
// without a bucket (tenants without any local limit) fall to the default
// bucket, which is effectively unlimited; always_consume_default_token_bucket
// is off so tenant traffic never touches it.
// Limits of this design: the buckets live as long as the route
// configuration — every edge-routes update (any tenant's change) starts
// all buckets full again, giving each tenant at most one extra burst per
// update; and each bucket is refilled once per unit (requests per second
// refill every second, not smoothly). Moving the config into an ECDS
// filter config would decouple bucket lifetime from route updates.
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

// LocalBucketNotFound is the local rate limit bucket of the catch-all
// route. A duplicate descriptor makes Envoy reject the whole route
// configuration, so the name must not be a possible tenant id.
const LocalBucketNotFound = "_not-found"

// routeLocal is the route's own local limit, if any.
func routeLocal(r *tenants.Route) *tenants.LocalRateLimit {
	if r.RateLimit == nil {
		return nil
	}
	return r.RateLimit.Local
}

func tenantLocal(t *tenants.Tenant) *tenants.LocalRateLimit {
	if t.Spec.RateLimits == nil {
		return nil
	}
	return t.Spec.RateLimits.Local
}

// localBucket names the bucket a route's requests consume ("" for none).
func localBucket(t *tenants.Tenant, r *tenants.Route) string {
	switch {
	case routeLocal(r) != nil:
		return t.ID() + "/" + r.Name
	case tenantLocal(t) != nil:
		return t.ID()
	}
	return ""
}

// localDescriptors are the tenant's buckets for the shared local rate
// limit config.
func localDescriptors(t *tenants.Tenant) ([]*ratelimitcommonv3.LocalRateLimitDescriptor, error) {
	var out []*ratelimitcommonv3.LocalRateLimitDescriptor
	if l := tenantLocal(t); l != nil {
		b, err := tokenBucket(l)
		if err != nil {
			return nil, fmt.Errorf("spec.rateLimits.local: %w", err)
		}
		out = append(out, envoy.LocalDescriptor(KeyLocalBucket, t.ID(), b))
	}
	for i := range t.Spec.Routes {
		r := &t.Spec.Routes[i]
		if l := routeLocal(r); l != nil {
			b, err := tokenBucket(l)
			if err != nil {
				return nil, fmt.Errorf("spec.routes[%d].rateLimit.local: %w", i, err)
			}
			out = append(out, envoy.LocalDescriptor(KeyLocalBucket, localBucket(t, r), b))
		}
	}
	return out, nil
}

func tokenBucket(l *tenants.LocalRateLimit) (*typev3.TokenBucket, error) {
	per := l.Per.Duration()
	switch {
	case per == 0:
		return nil, fmt.Errorf("per: unknown unit %q", l.Per)
	case l.Requests <= 0 || l.Burst < 0:
		return nil, fmt.Errorf("requests must be positive and burst not negative (got %d, %d)", l.Requests, l.Burst)
	case l.Requests > 1<<30 || l.Burst > 1<<30:
		// Envoy's bucket is a uint32 that briefly holds max + one fill.
		return nil, fmt.Errorf("requests and burst must be at most %d", 1<<30)
	}
	return envoy.TokenBucket(l.Requests, l.Burst, per), nil
}

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
