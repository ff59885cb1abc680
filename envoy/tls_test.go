package envoy

import (
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

func upstreamTLSContext(t *testing.T, u UpstreamTLS) *tlsv3.UpstreamTlsContext {
	t.Helper()
	ts, err := UpstreamTLSSocket(u)
	if err != nil {
		t.Fatal(err)
	}
	if ts.GetName() != TransportSocketTLS {
		t.Fatalf("transport socket %q, want %s", ts.GetName(), TransportSocketTLS)
	}
	var ctx tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	if err := ctx.ValidateAll(); err != nil {
		t.Fatalf("UpstreamTlsContext: %v", err)
	}
	return &ctx
}

// TestUpstreamTLSSocket: the SAN decides the matcher type and SNI; the CA,
// TLS 1.2–1.3, ALPN and the client certificate are as given.
func TestUpstreamTLSSocket(t *testing.T) {
	for _, c := range []struct {
		name     string
		in       UpstreamTLS
		sanType  tlsv3.SubjectAltNameMatcher_SanType
		san, sni string
	}{
		{"DNS", UpstreamTLS{CAFile: "/ca.crt", SAN: "tenantmesh", Host: "10.0.0.5"},
			tlsv3.SubjectAltNameMatcher_DNS, "tenantmesh", "tenantmesh"},
		{"SPIFFE, name dialled", UpstreamTLS{CAFile: "/ca.crt", SAN: "spiffe://td/controlplane", Host: "tenantmesh-authz.svc"},
			tlsv3.SubjectAltNameMatcher_URI, "spiffe://td/controlplane", "tenantmesh-authz.svc"},
		{"SPIFFE, IP dialled", UpstreamTLS{CAFile: "/ca.crt", SAN: "spiffe://td/ratelimit/rl", Host: "10.0.0.7"},
			tlsv3.SubjectAltNameMatcher_URI, "spiffe://td/ratelimit/rl", ""},
		{"IPv6 canonical", UpstreamTLS{CAFile: "/ca.crt", SAN: "FD00:0::5", Host: "fd00::5"},
			tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "fd00::5", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := upstreamTLSContext(t, c.in)
			v := ctx.GetCommonTlsContext().GetValidationContext()
			if v.GetTrustedCa().GetFilename() != "/ca.crt" {
				t.Errorf("trusted_ca %v", v.GetTrustedCa())
			}
			m := v.GetMatchTypedSubjectAltNames()
			if len(m) != 1 || m[0].GetSanType() != c.sanType || m[0].GetMatcher().GetExact() != c.san {
				t.Errorf("SAN matchers %v, want %v %q", m, c.sanType, c.san)
			}
			if ctx.GetSni() != c.sni {
				t.Errorf("SNI %q, want %q", ctx.GetSni(), c.sni)
			}
			p := ctx.GetCommonTlsContext().GetTlsParams()
			if p.GetTlsMinimumProtocolVersion() != tlsv3.TlsParameters_TLSv1_2 || p.GetTlsMaximumProtocolVersion() != tlsv3.TlsParameters_TLSv1_3 {
				t.Errorf("TLS params %v, want 1.2–1.3", p)
			}
			if len(ctx.GetCommonTlsContext().GetTlsCertificates()) != 0 || len(ctx.GetCommonTlsContext().GetAlpnProtocols()) != 0 {
				t.Error("client certificate or ALPN that was not asked for")
			}
		})
	}
	ctx := upstreamTLSContext(t, UpstreamTLS{CAFile: "/ca.crt", SAN: "ratelimit", CertFile: "/c.crt", KeyFile: "/c.key", ALPN: ALPNH2})
	certs := ctx.GetCommonTlsContext().GetTlsCertificates()
	if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != "/c.crt" || certs[0].GetPrivateKey().GetFilename() != "/c.key" {
		t.Errorf("client certificate %v", certs)
	}
	if a := ctx.GetCommonTlsContext().GetAlpnProtocols(); len(a) != 1 || a[0] != "h2" {
		t.Errorf("ALPN %v, want [h2]", a)
	}
	for _, bad := range []UpstreamTLS{
		{SAN: "x"}, {CAFile: "/ca"}, {CAFile: "/ca", SAN: "x", CertFile: "/c"}, {CAFile: "/ca", SAN: "x", KeyFile: "/k"},
	} {
		if _, err := UpstreamTLSSocket(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
