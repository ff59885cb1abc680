package contract

import (
	"fmt"
	"strings"
)

// Role is the kind of xDS client a node is, sent as node metadata
// NodeMetaRole.
type Role string

// Node roles.
const (
	RoleEdge    Role = "edge"
	RoleSidecar Role = "sidecar"
	RoleGRPC    Role = "grpc"
	// RoleGRPCServer is a proxyless gRPC server (grpc-go xds.NewGRPCServer)
	// of one tenant service.
	RoleGRPCServer Role = "grpc-server"
)

// Keys of the node metadata (core.v3.Node.metadata) a bootstrap writes
// and the xDS server reads. A node without NodeMetaRole is an edge
// (envoyproxy/ratelimit and plain Envoys send no metadata).
const (
	NodeMetaRole = "role"
	// NodeMetaTenant, NodeMetaService and NodeMetaAppPort describe the
	// workload of a sidecar or grpc-server: its tenant, the tenant upstream
	// it is, and the port the application listens on (a number, or a
	// numeric string).
	NodeMetaTenant  = "tenant"
	NodeMetaService = "service"
	NodeMetaAppPort = "appPort"
	// NodeMetaAppAddress is the IP a grpc-server listens on.
	NodeMetaAppAddress = "appAddress"
)

// Names of the resources sent to Envoy and proxyless gRPC clients.
const (
	EdgeListener      = "edge-http"
	EdgeRouteConfig   = "edge-routes"
	SharedVirtualHost = "shared"
	CatchAllRoute     = "not-found"
	AuthzCluster      = "tenantmesh-authz"
	RateLimitCluster  = "tenantmesh-ratelimit"
	// JWKSCluster reaches the control plane's admin server, where sidecars
	// fetch the x-tenant-context keys (JWKSPath).
	JWKSCluster = "tenantmesh-jwks"
	// RateLimitDomain is the domain of the global rate limit descriptors;
	// RateLimitConfig the RateLimitConfig resource envoyproxy/ratelimit
	// subscribes to.
	RateLimitDomain = "tenantmesh"
	RateLimitConfig = "tenantmesh"

	// A sidecar's listeners (each with a route configuration of the same
	// name) and its local application's cluster. A sidecar has caches of
	// its own, so these only need to be unique within one sidecar.
	SidecarInbound    = "sidecar-inbound"
	SidecarOutbound   = "sidecar-outbound"
	SidecarAppCluster = "sidecar-app"

	// GRPCServerListenerTemplate is the server_listener_resource_name_template
	// of a grpc-server's bootstrap: grpc-go puts its listening host:port in
	// place of %s and asks for that Listener.
	GRPCServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"
)

// GRPCServerListenerName is the Listener a grpc-server listening on
// hostPort asks for.
func GRPCServerListenerName(hostPort string) string {
	return fmt.Sprintf(GRPCServerListenerTemplate, hostPort)
}

// VirtualHostName is the name of a tenant's edge virtual host, which is
// also its VHDS resource name: VHDS names a virtual host
// "<route configuration>/<entry>" and Envoy subscribes to the route
// configuration's name as a namespace.
func VirtualHostName(tenant string) string { return EdgeRouteConfig + "/" + tenant }

// TenantOfVirtualHost is the tenant whose edge virtual host is named name.
func TenantOfVirtualHost(name string) (string, bool) {
	return strings.CutPrefix(name, EdgeRouteConfig+"/")
}

// ClusterName is the cluster of a tenant upstream, "<tenant>.<upstream>";
// it is also the target a proxyless gRPC client dials
// (xds:///tenant-a.executive), the name of its API listener, and a
// sidecar's or grpc-server's node.cluster.
func ClusterName(tenant, upstream string) string { return tenant + "." + upstream }

// HostRouteName is the name of a tenant route in the tenant's own virtual
// host; PathRouteName the name of its /tenants/<id> form in the shared one.
// Both start with the tenant id, which is how a NACK is traced back to it.
func HostRouteName(tenant, route string) string { return tenant + "/" + route }

// PathRouteName — see HostRouteName.
func PathRouteName(tenant, route string) string { return tenant + "/" + route + "/path" }

// MountGuardRouteName is the JSON 404 under a tenant's path mount.
func MountGuardRouteName(tenant string) string { return tenant + "/" + CatchAllRoute }

// PathPrefix is the path under which a tenant's routes are mounted in the
// shared virtual host (no trailing slash; the route's own path supplies it).
func PathPrefix(tenant string) string { return "/tenants/" + tenant }
