package bootstrap

import (
	"fmt"
	"net"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	overloadv3 "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	downstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
)

// downstreamConnectionsMonitor is the name Envoy's overload manager
// gives the proactive connection-count monitor.
const downstreamConnectionsMonitor = "envoy.resource_monitors.global_downstream_max_connections"

// Envoy builds the Envoy v3 bootstrap of an edge or sidecar node. The
// result passes validate.Deep.
func Envoy(o Options) (*bootstrapv3.Bootstrap, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Role == contract.RoleGRPC || o.Role == contract.RoleGRPCServer {
		return nil, invalid("role %s is proxyless gRPC: it takes the grpc-go bootstrap (GRPC), not an Envoy one", o.Role)
	}
	if o.Role == RoleRatelimit {
		return nil, invalid("role ratelimit is envoyproxy/ratelimit: it takes environment variables (Ratelimit), not an Envoy bootstrap")
	}
	o = o.withDefaults()
	xds, err := xdsCluster(o)
	if err != nil {
		return nil, err
	}
	overload, err := overloadManager(o)
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node:             node(o),
		DynamicResources: dynamicResources(o),
		StaticResources:  &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{xds}},
		Admin: &bootstrapv3.Admin{
			Address: socketAddress("127.0.0.1", o.AdminPort),
		},
		LayeredRuntime:  layeredRuntime(),
		OverloadManager: overload,
	}
	// Deep, not only ValidateAll: the TLS context, the protocol options
	// and the overload monitor are packed in Anys, which ValidateAll does
	// not open and Envoy validates when it instantiates them.
	if err := validate.Deep(b); err != nil {
		return nil, fmt.Errorf("bootstrap of node %s: %w", o.NodeID, err)
	}
	return b, nil
}

// node carries the identity translation keys on (the node metadata keys
// of package contract, which translate.NodeFromProto reads).
func node(o Options) *corev3.Node {
	meta := map[string]*structpb.Value{contract.NodeMetaRole: structpb.NewStringValue(string(o.Role))}
	if o.Role == contract.RoleSidecar {
		meta[contract.NodeMetaTenant] = structpb.NewStringValue(o.Tenant)
		meta[contract.NodeMetaService] = structpb.NewStringValue(o.Service)
		meta[contract.NodeMetaAppPort] = structpb.NewNumberValue(float64(o.AppPort))
	}
	return &corev3.Node{Id: o.NodeID, Cluster: o.Cluster, Metadata: &structpb.Struct{Fields: meta}}
}

func dynamicResources(o Options) *bootstrapv3.Bootstrap_DynamicResources {
	apiType := corev3.ApiConfigSource_DELTA_GRPC
	if o.SotW {
		apiType = corev3.ApiConfigSource_GRPC
	}
	return &bootstrapv3.Bootstrap_DynamicResources{
		AdsConfig: &corev3.ApiConfigSource{
			ApiType:             apiType,
			TransportApiVersion: corev3.ApiVersion_V3,
			// The node (with its metadata) is sent once per stream, not
			// with every request: it never changes while Envoy runs.
			SetNodeOnFirstMessageOnly: true,
			GrpcServices: []*corev3.GrpcService{{
				TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{
					ClusterName: XDSClusterName,
					// Honoured for xDS streams only: back-off of reconnects.
					RetryPolicy: &corev3.RetryPolicy{RetryBackOff: &corev3.BackoffStrategy{
						BaseInterval: durationpb.New(XDSRetryBaseInterval),
						MaxInterval:  durationpb.New(XDSRetryMaxInterval),
					}},
				}},
			}},
		},
		LdsConfig: adsSource(),
		CdsConfig: adsSource(),
	}
}

// adsSource points LDS/CDS at the ADS stream. initial_fetch_timeout 0
// keeps Envoy initializing (admin /ready answers 503) until the control
// plane has answered: with the default 15 s an Envoy that cannot reach
// the control plane would report ready with no listeners, and a load
// balancer would send it traffic it refuses.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		InitialFetchTimeout:   durationpb.New(0),
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// xdsCluster is the one static cluster: HTTP/2 (gRPC) to the xDS server
// with keepalives, optionally over TLS.
func xdsCluster(o Options) (*clusterv3.Cluster, error) {
	host, port, err := splitHostPort(o.XDSAddress)
	if err != nil {
		return nil, invalid("xDS address: %v", err)
	}
	discovery := clusterv3.Cluster_STRICT_DNS
	if net.ParseIP(host) != nil {
		discovery = clusterv3.Cluster_STATIC
	}
	proto, err := envoy.Any(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
				Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
					ConnectionKeepalive: &corev3.KeepaliveSettings{
						Interval: durationpb.New(XDSKeepaliveInterval),
						Timeout:  durationpb.New(XDSKeepaliveTimeout),
					},
				},
			},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("xds cluster protocol options: %w", err)
	}
	c := &clusterv3.Cluster{
		Name:                 XDSClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		ConnectTimeout:       durationpb.New(XDSConnectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: XDSClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
						Address: socketAddress(host, port),
					}},
				}},
			}},
		},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{envoy.HTTPProtocolOptions: proto},
		// TCP keepalive as well: HTTP/2 PINGs need a working stream to be
		// sent on, the kernel's probes also cover a silent half-open socket.
		UpstreamConnectionOptions: &clusterv3.UpstreamConnectionOptions{TcpKeepalive: &corev3.TcpKeepalive{
			KeepaliveTime:     wrapperspb.UInt32(30),
			KeepaliveInterval: wrapperspb.UInt32(10),
			KeepaliveProbes:   wrapperspb.UInt32(3),
		}},
	}
	if discovery == clusterv3.Cluster_STRICT_DNS {
		// Compose and Kubernetes service names resolve to IPv4; Envoy's
		// default (AUTO) would try AAAA first and wait for it.
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if o.TLS != nil {
		ts, err := upstreamTLS(o, host)
		if err != nil {
			return nil, err
		}
		c.TransportSocket = ts
	}
	return c, nil
}

// upstreamTLS verifies the control plane against the CA and its SAN
// (envoy.UpstreamTLSSocket), and presents the client certificate if given.
func upstreamTLS(o Options, host string) (*corev3.TransportSocket, error) {
	f := o.TLS
	ts, err := envoy.UpstreamTLSSocket(envoy.UpstreamTLS{
		CAFile: f.CA, SAN: o.serverSAN(), Host: host,
		CertFile: f.Cert, KeyFile: f.Key,
		// ADS is gRPC.
		ALPN: envoy.ALPNH2,
	})
	if err != nil {
		return nil, fmt.Errorf("xds cluster TLS: %w", err)
	}
	return ts, nil
}

func socketAddress(host string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// layeredRuntime has an empty static layer (the place for fleet-wide
// runtime defaults) under an admin layer, so an operator can flip a
// runtime flag on one Envoy through the loopback admin port while
// investigating, without a restart.
func layeredRuntime() *bootstrapv3.LayeredRuntime {
	return &bootstrapv3.LayeredRuntime{Layers: []*bootstrapv3.RuntimeLayer{
		{Name: "static", LayerSpecifier: &bootstrapv3.RuntimeLayer_StaticLayer{StaticLayer: &structpb.Struct{}}},
		{Name: "admin", LayerSpecifier: &bootstrapv3.RuntimeLayer_AdminLayer_{AdminLayer: &bootstrapv3.RuntimeLayer_AdminLayer{}}},
	}}
}

// overloadManager caps downstream connections: past the cap Envoy stops
// accepting new connections instead of running out of memory or file
// descriptors (Envoy's edge best practices).
func overloadManager(o Options) (*overloadv3.OverloadManager, error) {
	cfg, err := envoy.Any(&downstreamv3.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: int64(o.MaxDownstreamConnections)})
	if err != nil {
		return nil, fmt.Errorf("overload manager: %w", err)
	}
	return &overloadv3.OverloadManager{
		ResourceMonitors: []*overloadv3.ResourceMonitor{{
			Name:       downstreamConnectionsMonitor,
			ConfigType: &overloadv3.ResourceMonitor_TypedConfig{TypedConfig: cfg},
		}},
	}, nil
}
