package translate

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Resource names (docs/architecture.md#node-roles-and-resource-names).
// They are the contract with Envoy bootstraps, dashboards and the other
// parts of tenantmesh.
const (
	EdgeListenerName     = "edge-http"
	EdgeRouteConfigName  = "edge-routes"
	SharedVirtualHost    = "shared"
	AuthzClusterName     = "tenantmesh-authz"
	RateLimitClusterName = "tenantmesh-ratelimit"
	RateLimitDomain      = "tenantmesh"
	RateLimitConfigName  = "tenantmesh"
	CatchAllRouteName    = "not-found"
	// EdgeVirtualHostKey is the header the edge selects virtual hosts by
	// (RouteConfiguration.vhost_header), filled by an early header
	// mutation with envoy.VirtualHostKeyFormat and removed before the
	// request goes upstream.
	EdgeVirtualHostKey = "x-tenantmesh-vhost"

	// RateLimitConfigType is the type URL envoyproxy/ratelimit subscribes to.
	RateLimitConfigType = "type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig"

	// ExtAuthzNamespace is where ext_authz puts the dynamic metadata of an
	// allowed request ({tenant_id, tier}).
	ExtAuthzNamespace = "envoy.filters.http.ext_authz"
	// MetadataNamespace is tenantmesh's route metadata namespace.
	MetadataNamespace = "tenantmesh"

	// Context extension and descriptor keys.
	KeyTenantID = "tenant_id"
	KeyRoute    = "route"
	KeyWindow   = "window"
	// KeyLocalBucket is the route metadata key naming the route's local
	// rate limit bucket, and the local descriptor key.
	KeyLocalBucket = "local_bucket"
)

// VirtualHostName is the name of a tenant's edge virtual host, which is
// also its VHDS resource name: VHDS names a virtual host
// "<route configuration>/<entry>" and Envoy subscribes to the route
// configuration's name as a namespace.
func VirtualHostName(tenant string) string { return EdgeRouteConfigName + "/" + tenant }

// TenantOfVirtualHost is the tenant whose edge virtual host is named name.
func TenantOfVirtualHost(name string) (string, bool) {
	return strings.CutPrefix(name, EdgeRouteConfigName+"/")
}

// MountGuardRouteName is the JSON 404 under a tenant's path mount.
func MountGuardRouteName(tenant string) string { return tenant + "/" + CatchAllRouteName }

// ClusterName is the cluster of a tenant upstream, "<tenant>.<upstream>";
// it is also the target a proxyless gRPC client dials
// (xds:///tenant-a.executive) and the name of its API listener.
func ClusterName(tenant, upstream string) string { return tenant + "." + upstream }

// HostRouteName is the name of a tenant route's host form and
// PathRouteName of its /tenants/<id> form; both live in the tenant's own
// virtual host. Both start with the tenant id, which is how a NACK is
// traced back to it.
func HostRouteName(tenant, route string) string { return tenant + "/" + route }

// PathRouteName — see HostRouteName.
func PathRouteName(tenant, route string) string { return tenant + "/" + route + "/path" }

// PathPrefix is the path under which a tenant's routes are mounted on any
// host (no trailing slash; the route's own path supplies it).
func PathPrefix(tenant string) string { return "/tenants/" + tenant }

// Role is the kind of xDS client a node is.
type Role string

// Node roles: node.metadata.role (docs/architecture.md#node-roles-and-resource-names).
const (
	RoleEdge    Role = "edge"
	RoleSidecar Role = "sidecar"
	RoleGRPC    Role = "grpc"
	// RoleGRPCServer is a proxyless gRPC server (grpc-go xds.NewGRPCServer)
	// of one tenant service; see TranslateGRPCServer.
	RoleGRPCServer Role = "grpc-server"
)

// Node is what translation needs to know about an xDS client.
type Node struct {
	ID   string
	Role Role
	// Tenant, Service and AppPort describe a sidecar's workload.
	Tenant, Service string
	AppPort         int
	// AppAddress is the IP a grpc-server node listens on (metadata
	// appAddress, default 0.0.0.0); its Listener must carry exactly it.
	AppAddress string
}

// NodeFromProto reads the role and workload from node metadata. A node
// without a role is an edge (envoyproxy/ratelimit and plain Envoys send no
// metadata); appPort may be a number or a numeric string. Unknown roles
// are kept as given so Translate can reject them by name.
func NodeFromProto(n *corev3.Node) Node {
	out := Node{ID: n.GetId(), Role: RoleEdge}
	f := n.GetMetadata().GetFields()
	if r := f["role"].GetStringValue(); r != "" {
		out.Role = Role(r)
	}
	out.Tenant = f["tenant"].GetStringValue()
	out.Service = f["service"].GetStringValue()
	out.AppAddress = f["appAddress"].GetStringValue()
	switch v := f["appPort"]; v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		out.AppPort = int(v.GetNumberValue())
	case *structpb.Value_StringValue:
		if p, err := strconv.Atoi(v.GetStringValue()); err == nil {
			out.AppPort = p
		}
	}
	return out
}
