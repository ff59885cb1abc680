package envoy

import (
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// LocalRateLimitStatPrefix is the stat prefix of the local rate limiter.
const LocalRateLimitStatPrefix = "tenant_local_ratelimit"

// MaxDynamicLocalBuckets is max_dynamic_descriptors: how many buckets one
// wildcard descriptor keeps (an LRU; an evicted bucket comes back full).
// Entries are only made for values requests carry, and those come from
// route metadata, so this bounds nothing a client controls; it is set far
// above any catalog so no tenant's bucket is ever evicted, and constant so
// the listener does not change as tenants are added.
const MaxDynamicLocalBuckets = 1 << 20

// LocalRateLimitFilter is envoy.filters.http.local_ratelimit at listener
// level with cfg (LocalRateLimitConfig), or, cfg nil, present but without
// a token bucket and not enabled.
func LocalRateLimitFilter(cfg *localratelimitv3.LocalRateLimit) (*hcmv3.HttpFilter, error) {
	if cfg == nil {
		cfg = &localratelimitv3.LocalRateLimit{StatPrefix: LocalRateLimitStatPrefix}
	}
	return httpFilter(FilterLocalRateLimit, cfg)
}

// TokenBucket is requests per interval plus burst extra capacity.
func TokenBucket(requests, burst int, per time.Duration) *typev3.TokenBucket {
	return &typev3.TokenBucket{
		MaxTokens:     uint32(requests + burst),
		TokensPerFill: wrapperspb.UInt32(uint32(requests)),
		FillInterval:  Duration(per),
	}
}

// LocalDescriptor is a local rate limit descriptor with its own token
// bucket; keyValues are its entries, key then value. An empty value is a
// wildcard: Envoy then keeps one bucket per distinct value requests carry
// (local_ratelimit_impl.cc, LocalRateLimiterImpl::LocalRateLimiterImpl and
// DynamicDescriptor::addOrGetDescriptor).
func LocalDescriptor(bucket *typev3.TokenBucket, keyValues ...string) *ratelimitcommonv3.LocalRateLimitDescriptor {
	d := &ratelimitcommonv3.LocalRateLimitDescriptor{TokenBucket: bucket}
	for i := 0; i+1 < len(keyValues); i += 2 {
		d.Entries = append(d.Entries, &ratelimitcommonv3.RateLimitDescriptor_Entry{Key: keyValues[i], Value: keyValues[i+1]})
	}
	return d
}

// LocalRateLimitConfig is the one local rate limit config of an edge, for
// the listener's filter (not a per-route config: those are rebuilt, with
// fresh buckets, on every route table update; docs/ratelimit-local.md).
//
// Each request produces at most one descriptor, one entry per key in
// keys: (key, value of route metadata metadataNamespace:[key]), in that
// order (the metadata action, source ROUTE_ENTRY). A route lacking one of
// the keys produces none and consumes the default bucket (defaultBucket);
// always_consume_default_token_bucket is false so a request that matched
// a descriptor never also drains the default bucket.
func LocalRateLimitConfig(metadataNamespace string, keys []string, defaultBucket *typev3.TokenBucket, descriptors []*ratelimitcommonv3.LocalRateLimitDescriptor) *localratelimitv3.LocalRateLimit {
	actions := make([]*routev3.RateLimit_Action, len(keys))
	for i, k := range keys {
		actions[i] = &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
			DescriptorKey: k,
			MetadataKey: &metadatav3.MetadataKey{
				Key:  metadataNamespace,
				Path: []*metadatav3.MetadataKey_PathSegment{{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: k}}},
			},
			Source: routev3.RateLimit_Action_MetaData_ROUTE_ENTRY,
		}}}
	}
	return &localratelimitv3.LocalRateLimit{
		StatPrefix:                      LocalRateLimitStatPrefix,
		TokenBucket:                     defaultBucket,
		FilterEnabled:                   Always("tenantmesh.local_rate_limit.enabled"),
		FilterEnforced:                  Always("tenantmesh.local_rate_limit.enforced"),
		Descriptors:                     descriptors,
		AlwaysConsumeDefaultTokenBucket: wrapperspb.Bool(false),
		RateLimits:                      []*routev3.RateLimit{{Actions: actions}},
		MaxDynamicDescriptors:           wrapperspb.UInt32(MaxDynamicLocalBuckets),
	}
}
