package xds

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

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

type validator interface{ ValidateAll() error }

// validate runs the proto's generated validation (protoc-gen-validate), the
// same rules Envoy applies before it looks at a resource.
func validate(r types.Resource) error {
	v, ok := r.(validator)
	if !ok {
		return nil // ratelimit.config protos are generated without validation rules
	}
	return v.ValidateAll()
}
