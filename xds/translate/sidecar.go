package translate

import (
	"errors"
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// Sidecar resource names and the x-tenant-context names a sidecar's
// inbound listener verifies with. The values are declared in package
// contract (the other parts of tenantmesh and the backends rely on them);
// these names refer to them so the translation's files keep theirs.
const (
	SidecarInboundName  = contract.SidecarInbound    // listener and its route configuration
	SidecarOutboundName = contract.SidecarOutbound   // listener and its route configuration
	SidecarAppCluster   = contract.SidecarAppCluster // the local application, 127.0.0.1:<appPort>
	JWKSClusterName     = contract.JWKSCluster       // the control plane's admin server
	// ContextIssuer is the iss of x-tenant-context.
	ContextIssuer = contract.ContextTokenIssuer
	// ContextHeader carries the compact JWS ext_authz mints.
	ContextHeader = contract.HeaderTenantContext
	// TenantHeader is the plain tenant id header.
	TenantHeader = contract.HeaderTenantID
	// ContextPayloadKey is where jwt_authn stores the verified claims
	// (dynamic metadata envoy.filters.http.jwt_authn → tenantmesh), which
	// is what RBAC matches on.
	ContextPayloadKey = contract.ContextPayloadKey
	// JWKSPath is where the admin server publishes the context keys.
	JWKSPath = contract.JWKSPath
)

// How long a sidecar trusts the control plane's key set.
const (
	// JWKSCacheDuration bounds how long a sidecar uses fetched keys before
	// fetching them again (a rotated key is picked up within this time).
	JWKSCacheDuration = 5 * time.Minute
	jwksTimeout       = time.Second
)

// ErrInvalidNode is returned for a sidecar node whose metadata cannot be
// translated (no tenant, no service, no app port).
var ErrInvalidNode = errors.New("invalid sidecar node metadata")

// checkSidecarNode validates what a sidecar's node metadata must carry.
func checkSidecarNode(n Node) error {
	switch {
	case !isDNSLabel(n.Tenant):
		return fmt.Errorf("%w: tenant %q is not a DNS label", ErrInvalidNode, n.Tenant)
	case n.Service == "":
		return fmt.Errorf("%w: service is required", ErrInvalidNode)
	case n.AppPort < 1 || n.AppPort > 65535:
		return fmt.Errorf("%w: appPort %d is not a port", ErrInvalidNode, n.AppPort)
	}
	return nil
}

// TranslateSidecar builds the complete resource set of one sidecar: the
// inbound listener that only lets the sidecar's own tenant in, the
// outbound listener that only reaches the tenant's own services and the
// shared services it is entitled to, and their clusters. It depends on the
// node's tenant and the shared services only, so it is small and is
// rebuilt whole on every change.
//
// A tenant that is not in the Catalog (deleted, never created) still gets
// a sidecar configuration that fails closed: the inbound listener demands
// a context token nobody can mint any more, the outbound one has no route.
func TranslateSidecar(cat *tenants.Catalog, node Node) (*Resources, error) {
	t, _ := cat.Tenant(node.Tenant)
	return sidecarOf(cat, node, t)
}

// TranslateTenantNode is Translate for a node that serves one tenant's
// workload (a sidecar or a grpc-server) with t as that tenant (nil: not
// in the Catalog) instead of the Catalog's version: a cache that serves a
// tenant its last accepted version builds the tenant's sidecars from it.
func TranslateTenantNode(cat *tenants.Catalog, node Node, t *tenants.Tenant) (*Resources, error) {
	switch node.Role {
	case RoleSidecar:
		return sidecarOf(cat, node, t)
	case RoleGRPCServer:
		return grpcServerOf(cat, node, t)
	}
	return nil, fmt.Errorf("%w: %q does not serve one tenant", ErrUnsupportedRole, node.Role)
}

func sidecarOf(cat *tenants.Catalog, node Node, t *tenants.Tenant) (*Resources, error) {
	if err := checkSidecarNode(node); err != nil {
		return nil, err
	}
	mesh := cat.Mesh()
	known := t != nil
	if known {
		if err := checkTenant(t); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID(), err)
		}
	}
	sc := sidecarConfig{node: node, mesh: mesh}
	if known {
		sc.tenant = t
		if u, ok := t.Upstream(node.Service); ok {
			sc.service = u
		}
		sc.shared = cat.EntitledSharedServices(t)
	}
	res, err := sc.build()
	if err != nil {
		return nil, fmt.Errorf("sidecar %s/%s: %w", node.Tenant, node.Service, err)
	}
	if err := Validate(res); err != nil {
		return nil, fmt.Errorf("sidecar %s/%s: %w", node.Tenant, node.Service, err)
	}
	return res, nil
}

// sidecarConfig is the input of one sidecar's translation.
type sidecarConfig struct {
	node    Node
	mesh    *tenants.MeshConfig
	tenant  *tenants.Tenant   // nil: unknown tenant
	service *tenants.Upstream // the node's own upstream; nil when unknown
	shared  []*tenants.SharedService
}

// exemptPaths are the paths the inbound listener serves without a token:
// the service's own health check path, so the edge (or a kubelet probe
// through the sidecar) can probe it. A gRPC service is probed with
// grpc.health.v1 whichever kind its manifest names (clusterOptions).
func (sc *sidecarConfig) exemptPaths() []string {
	u := sc.service
	if u == nil || u.HealthCheck == nil {
		return nil
	}
	switch hc := u.HealthCheck; {
	case u.Protocol == tenants.ProtocolGRPC && (hc.GRPC != nil || hc.HTTP != nil):
		return []string{envoy.GRPCHealthCheckPath}
	case hc.HTTP != nil:
		return []string{hc.HTTP.Path}
	}
	return nil
}

func (sc *sidecarConfig) build() (*Resources, error) {
	in, err := sc.inboundListener()
	if err != nil {
		return nil, err
	}
	out, err := sc.outboundListener()
	if err != nil {
		return nil, err
	}
	inRoutes, err := sc.inboundRoutes()
	if err != nil {
		return nil, err
	}
	outRoutes, err := sc.outboundRoutes()
	if err != nil {
		return nil, err
	}
	clusters, cla, err := sc.clusters()
	if err != nil {
		return nil, err
	}
	listeners := []*listenerv3.Listener{in, out}
	routes := []*routev3.RouteConfiguration{inRoutes, outRoutes}
	sortByName(listeners)
	sortByName(routes)
	sortByName(clusters)
	sortCLAs(cla)
	return &Resources{
		Listeners: asResources(listeners),
		Routes:    asResources(routes),
		Clusters:  asResources(clusters),
		Endpoints: asResources(cla),
		// Sidecars never ask for RateLimitConfig; an empty list keeps
		// ByType's shape.
		RateLimitConfigs: asResources([]*rlsconfv3.RateLimitConfig(nil)),
	}, nil
}

// sidecarHCM is the HTTP connection manager of both sidecar listeners.
// Unlike the edge it keeps x-tenant-context: on the inbound side it is the
// credential, on the outbound side the application propagates it. Paths
// are normalized before any filter runs, so the exempt health path cannot
// be spelled /healthz/../admin to skip verification.
//
// alog names the tenant from what the listener knows: a sidecar runs no
// ext_authz, so ext_authz's metadata (the edge's access log) is never set.
func sidecarHCM(name string, filters []*hcmv3.HttpFilter, lr *hcmv3.LocalReplyConfig, alog *accesslogv3.AccessLog) (*hcmv3.HttpConnectionManager, error) {
	router, err := envoy.RouterFilter()
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpConnectionManager{
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    envoy.ADS(),
			RouteConfigName: name,
		}},
		HttpFilters:                  append(append([]*hcmv3.HttpFilter(nil), filters...), router),
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		StripPortMode:                &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{
			HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_REJECT_REQUEST,
		},
		RequestHeadersTimeout: envoy.Duration(envoy.RequestHeadersTimeout),
		StreamIdleTimeout:     envoy.Duration(envoy.StreamIdleTimeout),
		AccessLog:             []*accesslogv3.AccessLog{alog},
		LocalReplyConfig:      lr,
	}, nil
}

// inboundListener is sidecar-inbound: jwt_authn verifies x-tenant-context
// against the control plane's keys (iss tenantmesh, aud = the sidecar's
// tenant), then RBAC allows only a verified tenant_id claim equal to the
// sidecar's tenant, or the exempt health path. The audience check alone
// would already refuse other tenants' tokens (403); RBAC states the rule
// on the claim authz actually vouches for, so the isolation does not hang
// on the audience convention alone.
func (sc *sidecarConfig) inboundListener() (*listenerv3.Listener, error) {
	exempt := sc.exemptPaths()
	jwt, err := envoy.JWTAuthnFilter(envoy.JWTAuthnOptions{
		Provider:         ContextIssuer,
		Issuer:           ContextIssuer,
		Audiences:        []string{sc.node.Tenant},
		Header:           ContextHeader,
		JWKSURI:          jwksURI(&sc.mesh.Spec),
		JWKSCluster:      JWKSClusterName,
		JWKSTimeout:      jwksTimeout,
		CacheDuration:    JWKSCacheDuration,
		PayloadNamespace: ContextPayloadKey,
		Exempt:           exempt,
	})
	if err != nil {
		return nil, err
	}
	rbac, err := envoy.RBACFilter(envoy.JWTClaimPrincipal(ContextPayloadKey, contract.KeyTenantID, sc.node.Tenant), exempt)
	if err != nil {
		return nil, err
	}
	lr, err := envoy.SidecarLocalReplyConfig()
	if err != nil {
		return nil, err
	}
	// The tenant is the verified x-tenant-context's, where RBAC reads it.
	alog, err := envoy.JWTAuthnAccessLog(ContextPayloadKey)
	if err != nil {
		return nil, err
	}
	hcm, err := sidecarHCM(SidecarInboundName, []*hcmv3.HttpFilter{jwt, rbac}, lr, alog)
	if err != nil {
		return nil, err
	}
	return envoy.HTTPListener(envoy.HTTPListenerOptions{
		Name: SidecarInboundName, Address: "0.0.0.0", Port: sc.mesh.Spec.SidecarInboundPort,
	}, hcm)
}

// inboundRoutes send everything that passed the filters to the app. The
// x-tenant-id the app sees is the sidecar's tenant: RBAC let nothing else in.
func (sc *sidecarConfig) inboundRoutes() (*routev3.RouteConfiguration, error) {
	rm, err := resolvedMesh(sc.mesh)
	if err != nil {
		return nil, err
	}
	return &routev3.RouteConfiguration{
		Name: SidecarInboundName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "app",
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:  "app",
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: SidecarAppCluster},
					Timeout:          envoy.Duration(rm.SidecarRouteTimeout),
				}},
				RequestHeadersToAdd: []*corev3.HeaderValueOption{envoy.HeaderOverwrite(TenantHeader, sc.node.Tenant)},
			}},
		}},
	}, nil
}

// clusters are the local app, the JWKS source, the tenant's upstreams (the
// outbound targets, with the tenant's circuit breakers) and the tenant's
// aliases of its shared services.
func (sc *sidecarConfig) clusters() ([]*clusterv3.Cluster, []*endpointv3.ClusterLoadAssignment, error) {
	rm, err := resolvedMesh(sc.mesh)
	if err != nil {
		return nil, nil, err
	}
	http2 := false
	if u := sc.service; u != nil {
		http2 = u.Protocol == tenants.ProtocolHTTP2 || u.Protocol == tenants.ProtocolGRPC
	}
	app, err := envoy.Cluster(envoy.ClusterOptions{
		Name:           SidecarAppCluster,
		LBPolicy:       clusterv3.Cluster_ROUND_ROBIN,
		ConnectTimeout: rm.SidecarAppConnectTimeout,
		HTTP2:          http2,
		Discovery:      envoy.Static,
		Endpoints:      []envoy.Endpoint{{Host: "127.0.0.1", Port: sc.node.AppPort}},
	})
	if err != nil {
		return nil, nil, err
	}
	jwks, err := jwksCluster(&sc.mesh.Spec)
	if err != nil {
		return nil, nil, err
	}
	clusters := []*clusterv3.Cluster{app, jwks}
	var cla []*endpointv3.ClusterLoadAssignment
	if t := sc.tenant; t != nil {
		rt, err := resolvedTenant(t)
		if err != nil {
			return nil, nil, err
		}
		for i := range rt.Upstreams {
			c, e, err := edgeCluster(t, rt, &rt.Upstreams[i])
			if err != nil {
				return nil, nil, fmt.Errorf("spec.upstreams[%d] (%s): %w", i, t.Spec.Upstreams[i].Name, err)
			}
			clusters = append(clusters, c)
			if e != nil {
				cla = append(cla, e)
			}
		}
		for _, s := range sc.shared {
			c, err := sharedAliasCluster(t, s)
			if err != nil {
				return nil, nil, err
			}
			clusters = append(clusters, c)
			e, err := sharedLoadAssignment(s)
			if err != nil {
				return nil, nil, err
			}
			if e != nil {
				cla = append(cla, e)
			}
		}
	}
	return clusters, cla, nil
}
