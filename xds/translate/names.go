package translate

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/contract"
)

// The names below (docs/architecture.md#node-roles-and-resource-names) are
// the contract with Envoy bootstraps, dashboards, the authz service and the
// other parts of tenantmesh; they are declared
// in package contract and only referred to here, so the translation's
// files keep their short names while each value has one home.
const (
	EdgeListenerName     = contract.EdgeListener
	EdgeRouteConfigName  = contract.EdgeRouteConfig
	SharedVirtualHost    = contract.SharedVirtualHost
	AuthzClusterName     = contract.AuthzCluster
	RateLimitClusterName = contract.RateLimitCluster
	RateLimitDomain      = contract.RateLimitDomain
	RateLimitConfigName  = contract.RateLimitConfig
	CatchAllRouteName    = contract.CatchAllRoute

	// ExtAuthzNamespace is where ext_authz puts the dynamic metadata of an
	// allowed request ({tenant_id, tier}).
	ExtAuthzNamespace = contract.ExtAuthzNamespace
	// MetadataNamespace is tenantmesh's route metadata namespace.
	MetadataNamespace = contract.RouteMetadataNamespace

	// Context extension keys, which the global rate limit descriptors
	// reuse as their keys.
	KeyTenantID = contract.ExtTenantID
	KeyRoute    = contract.ExtRoute
)

// Names private to the translation's own output.
const (
	// EdgeVirtualHostKey is the header the edge selects virtual hosts by
	// (RouteConfiguration.vhost_header), filled by an early header
	// mutation with envoy.VirtualHostKeyFormat and removed before the
	// request goes upstream.
	EdgeVirtualHostKey = "x-tenantmesh-vhost"

	// RateLimitConfigType is the type URL envoyproxy/ratelimit subscribes to.
	RateLimitConfigType = "type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig"

	// KeyWindow is the descriptor key of a global limit's window.
	KeyWindow = "window"
	// KeyLocalBucket is the route metadata key naming the route's local
	// rate limit bucket, and the local descriptor key.
	KeyLocalBucket = "local_bucket"
)

// VirtualHostName is contract.VirtualHostName.
func VirtualHostName(tenant string) string { return contract.VirtualHostName(tenant) }

// TenantOfVirtualHost is contract.TenantOfVirtualHost.
func TenantOfVirtualHost(name string) (string, bool) { return contract.TenantOfVirtualHost(name) }

// MountGuardRouteName is contract.MountGuardRouteName.
func MountGuardRouteName(tenant string) string { return contract.MountGuardRouteName(tenant) }

// ClusterName is contract.ClusterName.
func ClusterName(tenant, upstream string) string { return contract.ClusterName(tenant, upstream) }

// HostRouteName is contract.HostRouteName.
func HostRouteName(tenant, route string) string { return contract.HostRouteName(tenant, route) }

// PathRouteName is contract.PathRouteName.
func PathRouteName(tenant, route string) string { return contract.PathRouteName(tenant, route) }

// PathPrefix is contract.PathPrefix.
func PathPrefix(tenant string) string { return contract.PathPrefix(tenant) }

// Role is the kind of xDS client a node is (contract.Role).
type Role = contract.Role

// Node roles (contract.Role*).
const (
	RoleEdge       = contract.RoleEdge
	RoleSidecar    = contract.RoleSidecar
	RoleGRPC       = contract.RoleGRPC
	RoleGRPCServer = contract.RoleGRPCServer
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
	if r := f[contract.NodeMetaRole].GetStringValue(); r != "" {
		out.Role = Role(r)
	}
	out.Tenant = f[contract.NodeMetaTenant].GetStringValue()
	out.Service = f[contract.NodeMetaService].GetStringValue()
	out.AppAddress = f[contract.NodeMetaAppAddress].GetStringValue()
	switch v := f[contract.NodeMetaAppPort]; v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		out.AppPort = int(v.GetNumberValue())
	case *structpb.Value_StringValue:
		if p, err := strconv.Atoi(v.GetStringValue()); err == nil {
			out.AppPort = p
		}
	}
	return out
}
