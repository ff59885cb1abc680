package translate

import (
	"fmt"
	"net"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// jwksURI is the remote_jwks http_uri of the sidecars' jwt_authn. Envoy
// sends the fetch to http_uri.cluster and takes only host and path from
// the URI (JwksFetcherImpl::fetch → Http::Utility::prepareHeaders in
// source/extensions/filters/http/common/jwks_fetcher.cc): whether it is
// encrypted is the cluster's transport socket. The scheme says the same,
// for whoever reads the configuration.
func jwksURI(s *tenants.MeshConfigSpec) string {
	scheme := "http://"
	if s.ControlPlaneAdminTLS != nil {
		scheme = "https://"
	}
	return scheme + s.ControlPlaneAdmin + JWKSPath
}

// jwksCluster reaches the control plane's public admin listener over
// HTTP/1.1: STATIC for an IP, STRICT_DNS for a name; over TLS verified
// against MeshConfig spec.controlPlaneAdminTLS when that is set, plain
// HTTP (loopback and development only) when it is not.
func jwksCluster(s *tenants.MeshConfigSpec) (*clusterv3.Cluster, error) {
	address := s.ControlPlaneAdmin
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: address %q: %w", JWKSClusterName, address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("cluster %s: address %q: invalid port", JWKSClusterName, address)
	}
	d := envoy.StrictDNS
	if net.ParseIP(host) != nil {
		d = envoy.Static
	}
	c, err := envoy.Cluster(envoy.ClusterOptions{
		Name:           JWKSClusterName,
		LBPolicy:       clusterv3.Cluster_ROUND_ROBIN,
		ConnectTimeout: envoy.DefaultServiceConnectTimeout,
		Discovery:      d,
		Endpoints:      []envoy.Endpoint{{Host: host, Port: port}},
	})
	if err != nil || s.ControlPlaneAdminTLS == nil {
		return c, err
	}
	ts, err := jwksTLS(s.ControlPlaneAdminTLS, host)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", JWKSClusterName, err)
	}
	c.TransportSocket = ts
	return c, nil
}

// jwksTLS verifies the admin listener's certificate: its chain against
// caFile and its subject alternative name against san (default: the host
// sidecars dial); envoy.UpstreamTLSSocket says why both. The JWKS is
// fetched over HTTP/1.1, so no ALPN is offered.
func jwksTLS(t *tenants.AdminTLS, host string) (*corev3.TransportSocket, error) {
	san := t.SAN
	if san == "" {
		san = host
	}
	ts, err := envoy.UpstreamTLSSocket(envoy.UpstreamTLS{CAFile: t.CAFile, SAN: san, Host: host})
	if err != nil {
		return nil, fmt.Errorf("TLS context: %w", err)
	}
	return ts, nil
}
