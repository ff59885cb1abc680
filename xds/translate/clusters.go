package translate

import (
	"fmt"
	"net"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

var lbPolicies = map[tenants.LBPolicy]clusterv3.Cluster_LbPolicy{
	tenants.LBRoundRobin:   clusterv3.Cluster_ROUND_ROBIN,
	tenants.LBLeastRequest: clusterv3.Cluster_LEAST_REQUEST,
	tenants.LBRandom:       clusterv3.Cluster_RANDOM,
	tenants.LBRingHash:     clusterv3.Cluster_RING_HASH,
	tenants.LBMaglev:       clusterv3.Cluster_MAGLEV,
}

// grpcLBPolicies maps to what grpc-go accepts (ROUND_ROBIN, RING_HASH,
// LEAST_REQUEST; it NACKs the rest): random behaves like round robin in
// the aggregate, maglev is consistent hashing like ring hash.
var grpcLBPolicies = map[tenants.LBPolicy]clusterv3.Cluster_LbPolicy{
	tenants.LBRoundRobin:   clusterv3.Cluster_ROUND_ROBIN,
	tenants.LBLeastRequest: clusterv3.Cluster_LEAST_REQUEST,
	tenants.LBRandom:       clusterv3.Cluster_ROUND_ROBIN,
	tenants.LBRingHash:     clusterv3.Cluster_RING_HASH,
	tenants.LBMaglev:       clusterv3.Cluster_RING_HASH,
}

// clusterOptions maps tenant t's resolved upstream to the cluster
// builder's options; the roles then adjust discovery, LB policy and what
// their client supports. high: the tenant's routes have priority HIGH.
func clusterOptions(t *tenants.Tenant, ru *tenants.ResolvedUpstream, high bool, lb map[tenants.LBPolicy]clusterv3.Cluster_LbPolicy) (envoy.ClusterOptions, error) {
	u := ru.Upstream
	policy, ok := lb[u.LBPolicy]
	if !ok {
		return envoy.ClusterOptions{}, fmt.Errorf("lbPolicy: unknown policy %q", u.LBPolicy)
	}
	o := envoy.ClusterOptions{
		Name:           ClusterName(t.ID(), u.Name),
		LBPolicy:       policy,
		ConnectTimeout: ru.ConnectTimeout,
		HTTP2:          u.Protocol == tenants.ProtocolHTTP2 || u.Protocol == tenants.ProtocolGRPC,
		Endpoints:      endpoints(u),
		HighPriority:   high,
	}
	if hc := u.HealthCheck; hc != nil {
		o.HealthCheck = &envoy.HealthCheck{
			Interval:           ru.HealthCheckInterval,
			Timeout:            ru.HealthCheckTimeout,
			UnhealthyThreshold: hc.UnhealthyThreshold,
			HealthyThreshold:   hc.HealthyThreshold,
		}
		switch {
		case u.Protocol == tenants.ProtocolGRPC && (hc.GRPC != nil || hc.HTTP != nil):
			// A gRPC server answers a plain HTTP GET 415, so even an http
			// check becomes grpc.health.v1 (of the whole server, host as
			// :authority; tenants.HealthCheck): see envoy.healthCheck.
			o.HealthCheck.GRPC = true
			if hc.GRPC != nil {
				o.HealthCheck.GRPCService = hc.GRPC.Service
			}
			if hc.HTTP != nil {
				o.HealthCheck.HTTPHost = hc.HTTP.Host
			}
		case hc.HTTP != nil:
			o.HealthCheck.HTTPPath, o.HealthCheck.HTTPHost = hc.HTTP.Path, hc.HTTP.Host
		}
	}
	// maxConcurrentRequests (tenant or tier) is the cluster's max_requests
	// unless the upstream's own circuit breaker says otherwise.
	th := envoy.Thresholds{MaxRequests: t.Spec.MaxConcurrentRequests}
	if cb := u.CircuitBreaker; cb != nil {
		th.MaxConnections, th.MaxPendingRequests, th.MaxRetries = cb.MaxConnections, cb.MaxPendingRequests, cb.MaxRetries
		if cb.MaxRequests > 0 {
			th.MaxRequests = cb.MaxRequests
		}
	}
	if th != (envoy.Thresholds{}) {
		o.CircuitBreaker = &th
	}
	if od := u.OutlierDetection; od != nil {
		o.OutlierDetection = &envoy.OutlierDetection{
			Consecutive5xx:     od.Consecutive5xx,
			Interval:           ru.OutlierInterval,
			BaseEjectionTime:   ru.OutlierBaseEjectionTime,
			MaxEjectionPercent: od.MaxEjectionPercent,
		}
	}
	return o, nil
}

func endpoints(u *tenants.Upstream) []envoy.Endpoint {
	out := make([]envoy.Endpoint, len(u.Endpoints))
	for i, e := range u.Endpoints {
		out[i] = envoy.Endpoint{Host: e.Address, Port: e.Port, Weight: e.Weight}
	}
	return out
}

// allIPs reports whether every endpoint is an IP literal. EDS needs IPs:
// Envoy does not resolve names in a ClusterLoadAssignment. An upstream
// with any DNS name therefore becomes a STRICT_DNS cluster with its
// endpoints inline (edge) — no ClusterLoadAssignment, and an endpoint
// change is a cluster update instead of an EDS update.
func allIPs(u *tenants.Upstream) bool {
	for _, e := range u.Endpoints {
		if net.ParseIP(e.Address) == nil {
			return false
		}
	}
	return true
}

// edgeCluster is the Envoy cluster of one of tenant t's upstreams (rt
// resolves t), and its endpoints when it uses EDS.
func edgeCluster(t *tenants.Tenant, rt *tenants.ResolvedTenant, ru *tenants.ResolvedUpstream) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment, error) {
	o, err := clusterOptions(t, ru, rt.Priority == tenants.PriorityHigh, lbPolicies)
	if err != nil {
		return nil, nil, err
	}
	var cla *endpointv3.ClusterLoadAssignment
	if allIPs(ru.Upstream) {
		o.Discovery = envoy.EDS
		cla = envoy.ClusterLoadAssignment(o.Name, o.Endpoints)
	} else {
		o.Discovery = envoy.StrictDNS
	}
	c, err := envoy.Cluster(o)
	if err != nil {
		return nil, nil, err
	}
	return c, cla, nil
}

// grpcUpstream adds what a proxyless gRPC client needs for one upstream.
// grpc-go supports EDS and LOGICAL_DNS (exactly one endpoint) clusters,
// ignores active health checks, and speaks HTTP/2 anyway, so those are
// left out; circuit breakers and outlier detection it does honour.
func grpcUpstream(t *tenants.Tenant, rt *tenants.ResolvedTenant, ru *tenants.ResolvedUpstream, out *TenantResources) error {
	o, err := clusterOptions(t, ru, rt.Priority == tenants.PriorityHigh, grpcLBPolicies)
	if err != nil {
		return err
	}
	u := ru.Upstream
	o.HTTP2, o.HealthCheck = false, nil
	switch {
	case allIPs(u):
		o.Discovery = envoy.EDS
		out.Endpoints = append(out.Endpoints, envoy.ClusterLoadAssignment(o.Name, o.Endpoints))
	case len(u.Endpoints) == 1:
		o.Discovery = envoy.LogicalDNS
	default:
		return fmt.Errorf("endpoints: a gRPC client can only use one DNS name or a list of IP addresses, got %d endpoints with names", len(u.Endpoints))
	}
	c, err := envoy.Cluster(o)
	if err != nil {
		return err
	}
	name := o.Name
	l, err := envoy.APIListener(name, name)
	if err != nil {
		return err
	}
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{name},
			Routes: []*routev3.Route{{
				Name:  name,
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
				}},
			}},
		}},
	}
	out.Clusters = append(out.Clusters, c)
	out.Listeners = append(out.Listeners, l)
	out.RouteConfigs = append(out.RouteConfigs, rc)
	return nil
}

// serviceCluster is the cluster of one of tenantmesh's own gRPC services
// (ext_authz, ratelimit) at a host:port from the MeshConfig: STATIC for an
// IP, STRICT_DNS for a name; always HTTP/2; over TLS when t is set.
func serviceCluster(name, address string, t *tenants.ServiceTLS) (*clusterv3.Cluster, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: address %q: %w", name, address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("cluster %s: address %q: invalid port", name, address)
	}
	d := envoy.StrictDNS
	if net.ParseIP(host) != nil {
		d = envoy.Static
	}
	c, err := envoy.Cluster(envoy.ClusterOptions{
		Name:           name,
		LBPolicy:       clusterv3.Cluster_ROUND_ROBIN,
		ConnectTimeout: envoy.DefaultServiceConnectTimeout,
		HTTP2:          true,
		Discovery:      d,
		Endpoints:      []envoy.Endpoint{{Host: host, Port: port}},
	})
	if err != nil || t == nil {
		return c, err
	}
	ts, err := serviceTLS(t, host)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	c.TransportSocket = ts
	return c, nil
}

// serviceTLS is the edge's TLS client side for a service of MeshConfig
// spec.authz.tls or spec.rateLimit.tls: the chain checked against caFile,
// the SAN (default: the host dialled; a spiffe:// SAN as a URI SAN), the
// edge's client certificate when the service wants mutual TLS, and ALPN
// h2 — both services are gRPC.
func serviceTLS(t *tenants.ServiceTLS, host string) (*corev3.TransportSocket, error) {
	san := t.SAN
	if san == "" {
		san = host
	}
	ts, err := envoy.UpstreamTLSSocket(envoy.UpstreamTLS{
		CAFile: t.CAFile, SAN: san, Host: host,
		CertFile: t.CertFile, KeyFile: t.KeyFile,
		ALPN: envoy.ALPNH2,
	})
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return ts, nil
}
