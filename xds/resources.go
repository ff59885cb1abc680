package xds

import (
	"fmt"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// RateLimitConfigType is the type URL envoyproxy/ratelimit subscribes to.
const RateLimitConfigType = translate.RateLimitConfigType

type routeT = routev3.Route

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

// validateParts validates every resource one tenant contributes, so a bad
// tenant is caught alone instead of failing the aggregate it joins.
func validateParts(p *translate.TenantResources) error {
	msgs := []proto.Message{}
	if p.VirtualHost != nil {
		msgs = append(msgs, p.VirtualHost)
	}
	for _, r := range p.PathRoutes {
		msgs = append(msgs, r)
	}
	for _, c := range p.Clusters {
		msgs = append(msgs, c)
	}
	for _, e := range p.Endpoints {
		msgs = append(msgs, e)
	}
	for _, l := range p.Listeners {
		msgs = append(msgs, l)
	}
	for _, r := range p.RouteConfigs {
		msgs = append(msgs, r)
	}
	if p.RateLimit != nil {
		msgs = append(msgs, p.RateLimit)
	}
	for _, m := range msgs {
		if err := validate(m); err != nil {
			return fmt.Errorf("%T %s: %w", m, resourceName(m), err)
		}
	}
	return nil
}
