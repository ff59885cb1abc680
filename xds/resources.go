package xds

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
	"google.golang.org/protobuf/proto"

	envoyvalidate "github.com/tenantmesh/tenantmesh/envoy/validate"

	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// RateLimitConfigType is the type URL envoyproxy/ratelimit subscribes to.
const RateLimitConfigType = translate.RateLimitConfigType

type named interface{ GetName() string }

func resourceName(r proto.Message) string {
	if cla, ok := r.(*endpointv3.ClusterLoadAssignment); ok {
		return cla.GetClusterName()
	}
	if n, ok := r.(named); ok {
		return n.GetName()
	}
	return ""
}

// validate is the publish gate for one shared resource (listener,
// edge-routes, service clusters): validate.Resource, every proto rule
// through every Any and Envoy's load-time rules. The ratelimit.config
// protos have no generated validation; translate checks them.
func validate(r types.Resource) error {
	if _, ok := r.(*rlsconfv3.RateLimitConfig); ok {
		return translate.ValidateRateLimitConfig(r)
	}
	return envoyvalidate.Resource(r)
}
