package envoy

import (
	"fmt"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// LocalRateLimitStatPrefix is the stat prefix of the local rate limiter.
const LocalRateLimitStatPrefix = "tenant_local_ratelimit"

// LocalRateLimitFilter is envoy.filters.http.local_ratelimit at listener
// level: present, but without a token bucket and not enabled, so it does
// nothing by itself. The buckets come from the route configuration's
// per-filter config (see LocalRateLimitBuckets); keeping them out of the
// listener means a tenant change never touches (and drains) the listener.
func LocalRateLimitFilter() (*hcmv3.HttpFilter, error) {
	return httpFilter(FilterLocalRateLimit, &localratelimitv3.LocalRateLimit{StatPrefix: LocalRateLimitStatPrefix})
}

// TokenBucket is requests per interval plus burst extra capacity.
func TokenBucket(requests, burst int, per time.Duration) *typev3.TokenBucket {
	return &typev3.TokenBucket{
		MaxTokens:     uint32(requests + burst),
		TokensPerFill: wrapperspb.UInt32(uint32(requests)),
		FillInterval:  Duration(per),
	}
}

// LocalDescriptor is a local rate limit descriptor: one entry key=value
// with its own token bucket.
func LocalDescriptor(key, value string, bucket *typev3.TokenBucket) *ratelimitcommonv3.LocalRateLimitDescriptor {
	return &ratelimitcommonv3.LocalRateLimitDescriptor{
		Entries:     []*ratelimitcommonv3.RateLimitDescriptor_Entry{{Key: key, Value: value}},
		TokenBucket: bucket,
	}
}

// LocalRateLimitBuckets is the local rate limit configuration placed once
// in the RouteConfiguration's typed_per_filter_config. Envoy builds one
// limiter (and one set of token buckets) per per-filter-config instance,
// so a single instance at route-configuration level is what makes a
// descriptor's bucket shared by every route of every virtual host.
//
// Each request produces at most one descriptor: (descriptorKey, value of
// route metadata metadataNamespace:[descriptorKey]). Tenant routes carry
// that metadata; routes without it (the catch-all) match no descriptor and
// consume the default bucket (defaultBucket). always_consume_default_token_bucket
// is false so tenant traffic never drains the default bucket.
func LocalRateLimitBuckets(metadataNamespace, descriptorKey string, defaultBucket *typev3.TokenBucket, descriptors []*ratelimitcommonv3.LocalRateLimitDescriptor) (*anypb.Any, error) {
	cfg := &localratelimitv3.LocalRateLimit{
		StatPrefix:                      LocalRateLimitStatPrefix,
		TokenBucket:                     defaultBucket,
		FilterEnabled:                   Always("tenantmesh.local_rate_limit.enabled"),
		FilterEnforced:                  Always("tenantmesh.local_rate_limit.enforced"),
		Descriptors:                     descriptors,
		AlwaysConsumeDefaultTokenBucket: wrapperspb.Bool(false),
		RateLimits: []*routev3.RateLimit{{Actions: []*routev3.RateLimit_Action{{
			ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
				DescriptorKey: descriptorKey,
				MetadataKey: &metadatav3.MetadataKey{
					Key:  metadataNamespace,
					Path: []*metadatav3.MetadataKey_PathSegment{{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: descriptorKey}}},
				},
				Source: routev3.RateLimit_Action_MetaData_ROUTE_ENTRY,
			}},
		}}}},
	}
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("local rate limit buckets: %w", err)
	}
	return a, nil
}
