package envoy

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Discovery is how a cluster finds its endpoints.
type Discovery int

// Endpoint discovery kinds.
const (
	// EDS: endpoints come as a ClusterLoadAssignment over ADS. Requires IP
	// addresses (Envoy does not resolve EDS hosts).
	EDS Discovery = iota
	// StrictDNS: Envoy resolves every endpoint host name and balances over
	// all addresses (edge clusters whose endpoints are DNS names).
	StrictDNS
	// LogicalDNS: one host name, the first address used per new
	// connection; the only DNS kind grpc-go supports (exactly one endpoint).
	LogicalDNS
	// Static: fixed IP endpoints inline.
	Static
)

// HealthCheck is an active health check: gRPC when GRPC is set, else HTTP
// when HTTPPath is set, TCP otherwise.
type HealthCheck struct {
	HTTPPath string
	// HTTPHost is the Host of an HTTP check, the :authority of a gRPC one
	// (empty: Envoy uses the cluster name).
	HTTPHost string
	// GRPC probes grpc.health.v1.Health/Check, asking about GRPCService
	// ("" is the server as a whole). It needs an HTTP/2 cluster.
	GRPC               bool
	GRPCService        string
	Interval, Timeout  time.Duration
	UnhealthyThreshold int
	HealthyThreshold   int
}

// Thresholds are circuit breaker limits (0: Envoy's default).
type Thresholds struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries int
}

// OutlierDetection ejects endpoints that keep failing.
type OutlierDetection struct {
	Consecutive5xx     int
	Interval           time.Duration
	BaseEjectionTime   time.Duration
	MaxEjectionPercent int
}

// GRPCHealthCheckPath is the :path of Envoy's gRPC health check request:
// the grpc.health.v1.Health service's Check method (health_checker_impl.cc,
// onInterval: Grpc::Common::prepareHeaders).
const GRPCHealthCheckPath = "/grpc.health.v1.Health/Check"

// ClusterOptions describe one upstream cluster.
type ClusterOptions struct {
	Name           string
	LBPolicy       clusterv3.Cluster_LbPolicy
	ConnectTimeout time.Duration
	// HTTP2 speaks HTTP/2 to the upstream (required for gRPC upstreams).
	HTTP2     bool
	Discovery Discovery
	// Endpoints are inline for DNS and static clusters; EDS clusters get
	// theirs from ClusterLoadAssignment.
	Endpoints   []Endpoint
	HealthCheck *HealthCheck
	// CircuitBreaker thresholds, applied to the default priority and, when
	// HighPriority, to the high priority too: routes with priority HIGH are
	// counted against the HIGH thresholds, which would otherwise be Envoy's
	// defaults (1024) and silently lift the tenant's limit.
	CircuitBreaker   *Thresholds
	HighPriority     bool
	OutlierDetection *OutlierDetection
}

// Cluster builds a cluster.
func Cluster(o ClusterOptions) (*clusterv3.Cluster, error) {
	c := &clusterv3.Cluster{
		Name:           o.Name,
		ConnectTimeout: Duration(o.ConnectTimeout),
		LbPolicy:       o.LBPolicy,
	}
	switch o.Discovery {
	case EDS:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ADS()}
	case StrictDNS, LogicalDNS:
		t := clusterv3.Cluster_STRICT_DNS
		if o.Discovery == LogicalDNS {
			t = clusterv3.Cluster_LOGICAL_DNS
		}
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: t}
		// Containers and most clusters resolve to IPv4; AUTO would try AAAA first.
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
		c.DnsRefreshRate = Duration(DNSRefreshRate)
		c.LoadAssignment = ClusterLoadAssignment(o.Name, o.Endpoints)
	case Static:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
		c.LoadAssignment = ClusterLoadAssignment(o.Name, o.Endpoints)
	default:
		return nil, fmt.Errorf("cluster %s: unknown discovery %d", o.Name, o.Discovery)
	}
	if o.HTTP2 {
		opts, err := http2Options()
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", o.Name, err)
		}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{HTTPProtocolOptions: opts}
	}
	if o.HealthCheck != nil {
		if o.HealthCheck.GRPC && !o.HTTP2 {
			return nil, fmt.Errorf("cluster %s: a gRPC health check needs an HTTP/2 cluster", o.Name)
		}
		c.HealthChecks = []*corev3.HealthCheck{healthCheck(*o.HealthCheck, o.HTTP2)}
	}
	if t := o.CircuitBreaker; t != nil {
		th := func(p corev3.RoutingPriority) *clusterv3.CircuitBreakers_Thresholds {
			return &clusterv3.CircuitBreakers_Thresholds{
				Priority:           p,
				MaxConnections:     U32(t.MaxConnections),
				MaxPendingRequests: U32(t.MaxPendingRequests),
				MaxRequests:        U32(t.MaxRequests),
				MaxRetries:         U32(t.MaxRetries),
			}
		}
		cb := &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th(corev3.RoutingPriority_DEFAULT)}}
		if o.HighPriority {
			cb.Thresholds = append(cb.Thresholds, th(corev3.RoutingPriority_HIGH))
		}
		c.CircuitBreakers = cb
	}
	if od := o.OutlierDetection; od != nil {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:    U32(od.Consecutive5xx),
			Interval:           Duration(od.Interval),
			BaseEjectionTime:   Duration(od.BaseEjectionTime),
			MaxEjectionPercent: U32(od.MaxEjectionPercent),
		}
	}
	return c, nil
}

func http2Options() (*anypb.Any, error) {
	return Any(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
}

// healthCheck builds the check as given: interval, timeout and both
// thresholds are required (api/envoy/config/core/v3/health_check.proto,
// HealthCheck: validate.rules required), which the resolved upstream
// always supplies; a zero one fails validation.
func healthCheck(h HealthCheck, http2 bool) *corev3.HealthCheck {
	hc := &corev3.HealthCheck{
		Interval:           Duration(h.Interval),
		Timeout:            Duration(h.Timeout),
		UnhealthyThreshold: U32(h.UnhealthyThreshold),
		HealthyThreshold:   U32(h.HealthyThreshold),
	}
	switch {
	case h.GRPC:
		// A gRPC server cannot answer an HTTP check: grpc-go refuses a
		// request without a gRPC content-type with 415
		// (internal/transport/http2_server.go, operateHeaders), so every
		// host would go unhealthy. Envoy's gRPC checker calls
		// grpc.health.v1.Health/Check over HTTP/2 and counts only a
		// SERVING answer as healthy
		// (source/extensions/health_checkers/grpc/health_checker_impl.cc,
		// onInterval and isHealthCheckSucceeded).
		hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{
			ServiceName: h.GRPCService,
			Authority:   h.HTTPHost,
		}}
	case h.HTTPPath != "":
		codec := typev3.CodecClientType_HTTP1
		if http2 {
			codec = typev3.CodecClientType_HTTP2
		}
		hc.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{
			Path:            h.HTTPPath,
			Host:            h.HTTPHost,
			CodecClientType: codec,
		}}
	default:
		hc.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
	}
	return hc
}
