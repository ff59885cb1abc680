package translate

import (
	"fmt"
	"sort"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// Local limits (per Envoy, APISIX limit-req) — docs/ratelimit-local.md.
//
// Envoy builds the token buckets of a local rate limit config when it
// builds the config (local_ratelimit.cc, FilterConfig::FilterConfig →
// LocalRateLimiterImpl; each bucket starts full). A per-route, virtual
// host or route configuration config is built with the route table, and
// the route table is rebuilt whole on every RDS or VHDS update
// (route_config_update_receiver_impl.cc, onVhdsUpdate; config_impl.cc,
// RouteMatcher::RouteMatcher makes every VirtualHostImpl anew and with it
// its PerFilterConfigs), so buckets kept there would start full again on
// any tenant's change. The listener's own filter config is built with the
// HCM (http_connection_manager/config.cc, processFilters) and outlives
// route updates. So all buckets live in the one config of edge-http's
// local_ratelimit filter, and nothing else carries a local config.
//
// That config cannot list every tenant's bucket: a tenant's change would
// change the listener. It lists one wildcard descriptor per distinct
// limit ("local_limit" class), and Envoy makes a bucket per distinct
// value of the wildcard entry (DynamicDescriptor::addOrGetDescriptor):
//
//	descriptor (local_limit=<limit>, local_bucket=*)   token bucket of <limit>
//	request    (local_limit=<limit>, local_bucket=<bucket>)
//
// where <bucket> is <tenant> (the tenant's limit, all its routes in both
// forms and its shared-service calls), <tenant>/<route> (a route with its
// own limit) or _not-found (the JSON 404s). Every route names both in
// route metadata tenantmesh:{local_limit, local_bucket}; the config's
// rate_limits reads them (metadata actions, ROUTE_ENTRY). Routes naming
// none (tenants without a local limit) consume the default bucket, which
// is as good as unlimited.
//
// The listener changes only when the set of limits changes: a limit no
// tenant, route or tier had before, or the last user of one going away.
// The tiers' limits are always listed, so tenants on tier defaults never
// change it.

// KeyLocalLimit is the route metadata key and local descriptor key naming
// the limit (token bucket parameters) of a route's local bucket.
const KeyLocalLimit = "local_limit"

// LocalBucketNotFound is the local rate limit bucket of the JSON 404s.
// Buckets are per (limit, name), so it must not be a possible tenant id.
const LocalBucketNotFound = "_not-found"

// notFoundLimit is the limit of LocalBucketNotFound.
var notFoundLimit = tenants.LocalRateLimit{Requests: envoy.UnattributedLocalRequests, Per: tenants.UnitSecond}

// LocalLimitName is the local_limit value of a limit:
// "<requests>/<unit>+<burst>", e.g. "100/second+20".
func LocalLimitName(l *tenants.LocalRateLimit) string {
	return strconv.Itoa(l.Requests) + "/" + string(l.Per) + "+" + strconv.Itoa(l.Burst)
}

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

// localLimit is the limit and the bucket a route's requests consume
// (nil, "" for none).
func localLimit(t *tenants.Tenant, r *tenants.Route) (*tenants.LocalRateLimit, string) {
	if l := routeLocal(r); l != nil {
		return l, t.ID() + "/" + r.Name
	}
	if l := tenantLocal(t); l != nil {
		return l, t.ID()
	}
	return nil, ""
}

// localMetadata is the route metadata naming a route's local bucket, nil
// when it has none. meta caches one per bucket for the tenant's routes
// (nil: no cache).
func localMetadata(t *tenants.Tenant, r *tenants.Route, meta map[string]*corev3.Metadata) *corev3.Metadata {
	l, b := localLimit(t, r)
	if l == nil {
		return nil
	}
	if m := meta[b]; m != nil {
		return m
	}
	m := envoy.RouteMetadata(MetadataNamespace, map[string]string{KeyLocalBucket: b, KeyLocalLimit: LocalLimitName(l)})
	if meta != nil {
		meta[b] = m
	}
	return m
}

// localDescriptors are the tenant's buckets, (local_limit, local_bucket)
// with the limit's token bucket: what Assemble takes the set of limits
// from, and what tells the xds layer a tenant's limits changed.
func localDescriptors(t *tenants.Tenant) ([]*ratelimitcommonv3.LocalRateLimitDescriptor, error) {
	var out []*ratelimitcommonv3.LocalRateLimitDescriptor
	add := func(l *tenants.LocalRateLimit, bucket, field string) error {
		b, err := tokenBucket(l)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		out = append(out, envoy.LocalDescriptor(b, KeyLocalLimit, LocalLimitName(l), KeyLocalBucket, bucket))
		return nil
	}
	if l := tenantLocal(t); l != nil {
		if err := add(l, t.ID(), "spec.rateLimits.local"); err != nil {
			return nil, err
		}
	}
	for i := range t.Spec.Routes {
		r := &t.Spec.Routes[i]
		if l := routeLocal(r); l != nil {
			_, b := localLimit(t, r)
			if err := add(l, b, fmt.Sprintf("spec.routes[%d].rateLimit.local", i)); err != nil {
				return nil, err
			}
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

// edgeLocalRateLimit is the config of edge-http's local_ratelimit filter:
// a wildcard descriptor per limit that the tiers, the given tenants' parts
// or the JSON 404s use, sorted by name.
//
// The default bucket only serves routes that name no bucket (tenants
// without a local limit): as good as unlimited. Envoy keeps tokens in a
// uint32 in older releases and adds a fill to a full bucket before
// clamping, so max_tokens + tokens_per_fill stays below 2^32.
func edgeLocalRateLimit(cat *tenants.Catalog, parts []*TenantResources) (*localratelimitv3.LocalRateLimit, error) {
	limits := map[string]*typev3.TokenBucket{}
	add := func(l *tenants.LocalRateLimit) error {
		b, err := tokenBucket(l)
		if err != nil {
			return err
		}
		limits[LocalLimitName(l)] = b
		return nil
	}
	if err := add(&notFoundLimit); err != nil {
		return nil, err
	}
	for _, tier := range cat.Tiers() {
		if rl := tier.Spec.RateLimits; rl != nil && rl.Local != nil {
			if err := add(rl.Local); err != nil {
				return nil, fmt.Errorf("tier %s: spec.rateLimits.local: %w", tier.Metadata.Name, err)
			}
		}
	}
	for _, p := range parts {
		for _, d := range p.LocalRateLimits {
			for _, e := range d.GetEntries() {
				if e.GetKey() == KeyLocalLimit {
					limits[e.GetValue()] = d.GetTokenBucket()
				}
			}
		}
	}
	names := make([]string, 0, len(limits))
	for n := range limits {
		names = append(names, n)
	}
	sort.Strings(names)
	descs := make([]*ratelimitcommonv3.LocalRateLimitDescriptor, len(names))
	for i, n := range names {
		descs[i] = envoy.LocalDescriptor(limits[n], KeyLocalLimit, n, KeyLocalBucket, "")
	}
	unlimited := envoy.TokenBucket(1<<30, 1<<30, second)
	cfg := envoy.LocalRateLimitConfig(MetadataNamespace, []string{KeyLocalLimit, KeyLocalBucket}, unlimited, descs)
	if err := cfg.ValidateAll(); err != nil {
		return nil, fmt.Errorf("local rate limit config: %w", err)
	}
	return cfg, nil
}
