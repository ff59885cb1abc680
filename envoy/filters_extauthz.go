package envoy

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// GRPCService points at a cluster over Envoy's own gRPC client.
func GRPCService(cluster string, timeout time.Duration) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}},
		Timeout:         Duration(timeout),
	}
}

// ExtAuthzFilter is the ext_authz HTTP filter calling cluster over gRPC.
//
// It fails closed (failure_mode_allow false): an unreachable authz service
// must never let unauthenticated traffic through. Such failures answer 503
// (status_on_error) instead of the default 403, so clients and alerts can
// tell "authz is down" from "you are not allowed". Request bodies are not
// buffered here; routes that validate bodies enable it per route.
//
// clear_route_cache makes Envoy select the route again after an allow that
// set headers: shared services route on the x-tenant-id authz verified
// (translate.buildSharedEdge). Envoy warns that a route chosen after
// authorization may not be the one authorized; here only the routes under
// /shared/<name>/ match on a header authz sets, every one of them carries
// the same authz config, and the one chosen is the verified tenant's. All
// other routes match on host, path and method only and are selected again
// identically, at the cost of one more route lookup.
func ExtAuthzFilter(cluster string, timeout time.Duration) (*hcmv3.HttpFilter, error) {
	cfg := &extauthzv3.ExtAuthz{
		Services:            &extauthzv3.ExtAuthz_GrpcService{GrpcService: GRPCService(cluster, timeout)},
		TransportApiVersion: corev3.ApiVersion_V3,
		FailureModeAllow:    false,
		StatusOnError:       &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		ClearRouteCache:     true,
	}
	return httpFilter(FilterExtAuthz, cfg)
}

// ExtAuthzCheck is the per-route ext_authz configuration: context
// extensions handed to the authz service with every check, and, when
// maxBodyBytes > 0, buffering of up to that many request body bytes so the
// service can validate the body. allow_partial_message is false: a body
// larger than the limit is rejected (413) rather than validated in part.
func ExtAuthzCheck(contextExtensions map[string]string, maxBodyBytes int) (*anypb.Any, error) {
	cs := &extauthzv3.CheckSettings{ContextExtensions: contextExtensions}
	if maxBodyBytes > 0 {
		cs.WithRequestBody = &extauthzv3.BufferSettings{
			MaxRequestBytes:     uint32(maxBodyBytes),
			AllowPartialMessage: false,
		}
	}
	a, err := Any(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: cs}})
	if err != nil {
		return nil, fmt.Errorf("ext_authz per-route config: %w", err)
	}
	return a, nil
}

// ExtAuthzDisabled turns ext_authz off for a route (the catch-all 404,
// which belongs to no tenant and so has nothing to authorize).
func ExtAuthzDisabled() (*anypb.Any, error) {
	return Any(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
}
