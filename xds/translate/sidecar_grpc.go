package translate

import (
	"fmt"
	"net"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// GRPCServerListenerTemplate is contract.GRPCServerListenerTemplate.
const GRPCServerListenerTemplate = contract.GRPCServerListenerTemplate

// GRPCServerListenerName is contract.GRPCServerListenerName.
func GRPCServerListenerName(hostPort string) string {
	return contract.GRPCServerListenerName(hostPort)
}

// TranslateGRPCServer builds the one Listener a proxyless gRPC server of a
// tenant service (grpc-go xds.NewGRPCServer, node metadata {role:
// grpc-server, tenant, service, appPort, appAddress}) needs: its address
// must equal the server's listening address exactly (grpc-go refuses the
// update otherwise), the route configuration is inline with one
// non-forwarding route (the only action a gRPC server accepts), and the
// HTTP filters are RBAC then router.
//
// grpc-go's RBAC cannot verify a JWT (it knows neither jwt_authn nor
// dynamic metadata: a metadata principal never matches), so the principal
// is the x-tenant-id header equal to the node's tenant. That header is
// trustworthy only on paths where tenantmesh overwrote it — after authz
// at the edge, or from a sidecar's outbound listener; a client that can
// reach the server directly can forge it. The same-tenant guarantee with
// cryptographic verification is the Envoy sidecar's (sidecar-inbound).
// The service's HTTP health check path, if any, is exempt as for sidecars.
func TranslateGRPCServer(cat *tenants.Catalog, node Node) (*Resources, error) {
	t, _ := cat.Tenant(node.Tenant)
	return grpcServerOf(cat, node, t)
}

func grpcServerOf(cat *tenants.Catalog, node Node, t *tenants.Tenant) (*Resources, error) {
	if err := checkSidecarNode(node); err != nil {
		return nil, err
	}
	host := node.AppAddress
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%w: appAddress %q is not an IP address", ErrInvalidNode, host)
	}
	sc := sidecarConfig{node: node, mesh: cat.Mesh()}
	if t != nil {
		if u, ok := t.Upstream(node.Service); ok {
			sc.service = u
		}
	}
	exempt := sc.exemptPaths()
	rbac, err := envoy.RBACFilter(envoy.HeaderPrincipal(TenantHeader, node.Tenant), exempt)
	if err != nil {
		return nil, err
	}
	router, err := envoy.RouterFilter()
	if err != nil {
		return nil, err
	}
	name := GRPCServerListenerName(net.JoinHostPort(host, strconv.Itoa(node.AppPort)))
	hcm := &hcmv3.HttpConnectionManager{
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		StatPrefix: "grpc-server",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "grpc-server",
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    node.Service,
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Name:   node.Service,
					Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
				}},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{rbac, router},
	}
	l, err := envoy.HTTPListener(envoy.HTTPListenerOptions{Name: name, Address: host, Port: node.AppPort}, hcm)
	if err != nil {
		return nil, err
	}
	res := &Resources{
		Listeners:        asResources([]*listenerv3.Listener{l}),
		RateLimitConfigs: asResources([]*rlsconfv3.RateLimitConfig(nil)),
	}
	if err := Validate(res); err != nil {
		return nil, fmt.Errorf("grpc server %s/%s: %w", node.Tenant, node.Service, err)
	}
	return res, nil
}
