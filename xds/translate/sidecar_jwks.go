package translate

import (
	"fmt"
	"net"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// tlsTransportSocket is the name of Envoy's TLS transport socket.
const tlsTransportSocket = "envoy.transport_sockets.tls"

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
// sidecars dial). Both are needed: without trusted_ca Envoy verifies no
// chain at all, and without a SAN match any certificate of the CA would
// pass as the control plane (DefaultCertValidator::initializeSslContexts
// and ::verifyCertificate in
// source/common/tls/cert_validator/default_validator.cc).
func jwksTLS(t *tenants.AdminTLS, host string) (*corev3.TransportSocket, error) {
	san := t.SAN
	if san == "" {
		san = host
	}
	sanType := tlsv3.SubjectAltNameMatcher_DNS
	sni := san
	if ip := net.ParseIP(san); ip != nil {
		// Envoy compares an IP SAN as the address's canonical text
		// (Utility::generalNameAsString, source/common/tls/utility.cc),
		// which is what net.IP.String prints; SNI never carries an IP
		// (RFC 6066 section 3).
		sanType, san, sni = tlsv3.SubjectAltNameMatcher_IP_ADDRESS, ip.String(), ""
	}
	// An exact DNS matcher follows DNS matching rules, so a wildcard
	// certificate (*.svc) matches a name below it (StringSanMatcher::match,
	// source/common/tls/cert_validator/san_matcher.cc).
	validation := &tlsv3.CertificateValidationContext{
		TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: t.CAFile}},
		MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
			SanType: sanType,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}},
		}},
	}
	ctx := &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation},
		},
		// Envoy sends no SNI unless told (UpstreamTlsContext.sni in
		// api/envoy/extensions/transport_sockets/tls/v3/tls.proto).
		Sni: sni,
	}
	a, err := envoy.Any(ctx)
	if err != nil {
		return nil, fmt.Errorf("TLS context: %w", err)
	}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}
