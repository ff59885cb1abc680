package envoy

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
)

// GlobalRateLimitOptions configure the global (envoyproxy/ratelimit) filter.
type GlobalRateLimitOptions struct {
	Domain          string
	Cluster         string
	Timeout         time.Duration
	FailureModeDeny bool
}

// GlobalRateLimitFilter is envoy.filters.http.ratelimit. It sends the
// descriptors of the matched route's rate_limits (stage 0) to the rate
// limit service and answers 429 with x-ratelimit-* headers (draft 03) when
// any descriptor is over its limit. HTTP callers get 429, gRPC callers
// UNAVAILABLE (rate_limited_as_resource_exhausted false, Envoy's default
// and what gRPC retry policies expect from an overloaded server).
func GlobalRateLimitFilter(o GlobalRateLimitOptions) (*hcmv3.HttpFilter, error) {
	return httpFilter(FilterRateLimit, &ratelimitv3.RateLimit{
		Domain:                         o.Domain,
		Stage:                          0,
		Timeout:                        Duration(o.Timeout),
		FailureModeDeny:                o.FailureModeDeny,
		RateLimitedAsResourceExhausted: false,
		EnableXRatelimitHeaders:        ratelimitv3.RateLimit_DRAFT_VERSION_03,
		RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
			GrpcService:         GRPCService(o.Cluster, 0),
			TransportApiVersion: corev3.ApiVersion_V3,
		},
	})
}

// MetadataAction is a rate limit action producing (key, value of dynamic
// metadata namespace:[key]). Without that metadata Envoy sends no
// descriptor for the rate limit at all — right for tenant_id from
// ext_authz: no verified tenant, nothing to count.
func MetadataAction(namespace, key string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
			DescriptorKey: key,
			MetadataKey: &metadatav3.MetadataKey{
				Key:  namespace,
				Path: []*metadatav3.MetadataKey_PathSegment{{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: key}}},
			},
			Source: routev3.RateLimit_Action_MetaData_DYNAMIC,
		}},
	}
}

// GenericKeyAction is a rate limit action producing the static entry
// (key, value).
func GenericKeyAction(key, value string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{
		ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{GenericKey: &routev3.RateLimit_Action_GenericKey{
			DescriptorKey:   key,
			DescriptorValue: value,
		}},
	}
}

// RateLimit is one route rate_limits entry: one descriptor made of the
// actions' entries, in order. Actions may be shared between entries and
// routes; they are never modified.
func RateLimit(actions ...*routev3.RateLimit_Action) *routev3.RateLimit {
	return &routev3.RateLimit{Actions: actions}
}
