package envoy

import (
	"errors"
	"fmt"
	"net"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// UpstreamTLS is the client side of a TLS connection Envoy opens to a
// server tenantmesh runs or depends on: the xDS server (bootstrap), the
// admin listener's JWKS, ext_authz and envoyproxy/ratelimit. Paths are
// files in the Envoy's own file system, read when the cluster is built.
type UpstreamTLS struct {
	// CAFile verifies the server's chain; required.
	CAFile string
	// SAN is the subject alternative name the server's certificate must
	// carry: a spiffe:// URI (a URI SAN), an IP address or a DNS name.
	SAN string
	// Host is the host the cluster dials. SNI is SAN when SAN is a DNS
	// name, else Host when Host is a name, else none.
	Host string
	// CertFile and KeyFile are the client certificate (mutual TLS); both
	// or neither.
	CertFile, KeyFile string
	// ALPN is offered in the ClientHello: "h2" for a gRPC server.
	ALPN []string
}

// ALPNH2 is what a gRPC upstream over TLS needs: grpc-go servers refuse a
// TLS connection that does not negotiate h2, and Envoy offers no ALPN
// unless told (CommonTlsContext.alpn_protocols in
// api/envoy/extensions/transport_sockets/tls/v3/tls.proto: "There is no
// default for this parameter. If empty, Envoy will not expose ALPN").
var ALPNH2 = []string{"h2"}

// SANKind is how an UpstreamTLS SAN is matched.
func SANKind(san string) tlsv3.SubjectAltNameMatcher_SanType {
	switch {
	case strings.HasPrefix(san, "spiffe://"):
		return tlsv3.SubjectAltNameMatcher_URI
	case net.ParseIP(san) != nil:
		return tlsv3.SubjectAltNameMatcher_IP_ADDRESS
	default:
		return tlsv3.SubjectAltNameMatcher_DNS
	}
}

// UpstreamTLSSocket is the envoy.transport_sockets.tls transport socket
// of t. It checks both the chain and the SAN: without trusted_ca Envoy
// verifies no chain at all, and without a SAN match any certificate of
// the CA — another node's client certificate included — would pass as
// the server (DefaultCertValidator::initializeSslContexts and
// ::verifyCertificate in source/common/tls/cert_validator/default_validator.cc).
func UpstreamTLSSocket(t UpstreamTLS) (*corev3.TransportSocket, error) {
	if t.CAFile == "" || t.SAN == "" {
		return nil, errors.New("upstream TLS needs a CA file and the server's SAN")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("upstream TLS client certificate needs both the certificate and the key file")
	}
	kind, san := SANKind(t.SAN), t.SAN
	if kind == tlsv3.SubjectAltNameMatcher_IP_ADDRESS {
		// Envoy compares an IP SAN as the address's canonical text
		// (Utility::generalNameAsString, source/common/tls/utility.cc),
		// which is what net.IP.String prints.
		san = net.ParseIP(san).String()
	}
	// An exact matcher follows DNS matching rules for a DNS SAN (a
	// wildcard certificate *.svc matches a name below it) and compares
	// the other types as strings (StringSanMatcher::match,
	// source/common/tls/cert_validator/san_matcher.cc).
	validation := &tlsv3.CertificateValidationContext{
		TrustedCa: fileSource(t.CAFile),
		MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
			SanType: kind,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}},
		}},
	}
	common := &tlsv3.CommonTlsContext{
		// An Envoy client's default maximum is TLS 1.2
		// (api/envoy/extensions/transport_sockets/tls/v3/common.proto,
		// TlsParameters.tls_maximum_protocol_version): allow 1.3, which
		// tenantmesh's servers prefer.
		TlsParams: &tlsv3.TlsParameters{
			TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
			TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
		},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation},
		AlpnProtocols:         t.ALPN,
	}
	if t.CertFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(t.CertFile),
			PrivateKey:       fileSource(t.KeyFile),
		}}
	}
	// Envoy sends no SNI unless told (UpstreamTlsContext.sni in
	// api/envoy/extensions/transport_sockets/tls/v3/tls.proto); SNI never
	// carries an IP address (RFC 6066 section 3).
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: common}
	switch {
	case kind == tlsv3.SubjectAltNameMatcher_DNS:
		ctx.Sni = san
	case t.Host != "" && net.ParseIP(t.Host) == nil:
		ctx.Sni = t.Host
	}
	a, err := Any(ctx)
	if err != nil {
		return nil, fmt.Errorf("upstream TLS context: %w", err)
	}
	return &corev3.TransportSocket{Name: TransportSocketTLS, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}
