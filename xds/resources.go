package xds

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
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

// validateShared validates a shared resource. In a RouteConfiguration the
// tenants' own virtual hosts were validated when their tenant was
// translated (TranslateTenant), and protoc-gen-validate has no rule across
// virtual hosts, so only the rest is validated again: with 10,000 tenants
// that is most of the cost of a route change saved. The resource is not
// published yet, so swapping its slice for the check races with nobody.
func validateShared(r types.Resource, tenantHosts map[*routev3.VirtualHost]bool) error {
	rc, ok := r.(*routev3.RouteConfiguration)
	if !ok {
		return validate(r)
	}
	all := rc.VirtualHosts
	rest := make([]*routev3.VirtualHost, 0, 1)
	for _, vh := range all {
		if !tenantHosts[vh] {
			rest = append(rest, vh)
		}
	}
	rc.VirtualHosts = rest
	err := rc.ValidateAll()
	rc.VirtualHosts = all
	return err
}
