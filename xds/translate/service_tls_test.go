package translate

import (
	"fmt"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
)

// edgeWithMesh translates the edge under a MeshConfig spec given as YAML
// lines, and checks the result passes the publish gate.
func edgeWithMesh(t *testing.T, spec string) *Resources {
	t.Helper()
	cat := catalogFrom(t, "mesh.yaml", fmt.Appendf(nil, `apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
%s
---
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-a}
spec:
  routes: [{name: r, match: {pathPrefix: /}, upstream: u}]
  upstreams: [{name: u, endpoints: [{address: 10.0.0.1, port: 8080}]}]
`, spec))
	res := translateEdge(t, cat)
	if err := Validate(res); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return res
}

func clusterTLS(t *testing.T, res *Resources, name string) *tlsv3.UpstreamTlsContext {
	t.Helper()
	c := clustersByName(res)[name]
	if c == nil {
		t.Fatalf("no cluster %s", name)
	}
	ts := c.GetTransportSocket()
	if ts == nil {
		return nil
	}
	if ts.GetName() != "envoy.transport_sockets.tls" {
		t.Fatalf("%s: transport socket %q", name, ts.GetName())
	}
	var ctx tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	return &ctx
}

// TestServiceClustersTLS: spec.authz.tls and spec.rateLimit.tls give the
// edge's tenantmesh-authz and tenantmesh-ratelimit clusters a TLS client
// side: the CA, the SAN (URI for spiffe://, else DNS or IP; default the
// host dialled), SNI for a name, ALPN h2 (gRPC), TLS 1.2–1.3 and the
// edge's client certificate when given. Without them, plaintext as before.
func TestServiceClustersTLS(t *testing.T) {
	type want struct {
		sanType  tlsv3.SubjectAltNameMatcher_SanType
		san, sni string
		cert     bool
	}
	for _, c := range []struct {
		name, spec string
		authz, rl  *want
	}{
		{name: "plaintext", spec: "  authz: {address: tenantmesh:9191}\n  rateLimit: {address: ratelimit:8081}"},
		{name: "authz mutual TLS by SPIFFE ID, ratelimit plaintext",
			spec:  "  authz:\n    address: tenantmesh-authz.mesh.svc:9191\n    tls: {caFile: /tls/ca.crt, san: spiffe://tenantmesh.local/controlplane, certFile: /tls/tls.crt, keyFile: /tls/tls.key}\n  rateLimit: {address: ratelimit:8081}",
			authz: &want{tlsv3.SubjectAltNameMatcher_URI, "spiffe://tenantmesh.local/controlplane", "tenantmesh-authz.mesh.svc", true}},
		{name: "both, SANs defaulted to the hosts",
			spec:  "  authz: {address: tenantmesh:9191, tls: {caFile: /tls/ca.crt}}\n  rateLimit: {address: 10.0.0.9:8081, tls: {caFile: /tls/ca.crt, certFile: /tls/tls.crt, keyFile: /tls/tls.key}}",
			authz: &want{tlsv3.SubjectAltNameMatcher_DNS, "tenantmesh", "tenantmesh", false},
			rl:    &want{tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "10.0.0.9", "", true}},
		{name: "ratelimit by DNS SAN at an IP",
			spec: "  rateLimit: {address: 10.0.0.9:8081, tls: {caFile: /tls/ca.crt, san: ratelimit.mesh.svc}}",
			rl:   &want{tlsv3.SubjectAltNameMatcher_DNS, "ratelimit.mesh.svc", "ratelimit.mesh.svc", false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := edgeWithMesh(t, c.spec)
			for cluster, w := range map[string]*want{AuthzClusterName: c.authz, RateLimitClusterName: c.rl} {
				ctx := clusterTLS(t, res, cluster)
				if w == nil {
					if ctx != nil {
						t.Errorf("%s: TLS without its tls field: %v", cluster, ctx)
					}
					continue
				}
				if ctx == nil {
					t.Fatalf("%s: no TLS transport socket", cluster)
				}
				common := ctx.GetCommonTlsContext()
				v := common.GetValidationContext()
				if v.GetTrustedCa().GetFilename() != "/tls/ca.crt" {
					t.Errorf("%s: trusted CA %v", cluster, v.GetTrustedCa())
				}
				m := v.GetMatchTypedSubjectAltNames()
				if len(m) != 1 || m[0].GetSanType() != w.sanType || m[0].GetMatcher().GetExact() != w.san {
					t.Errorf("%s: SAN matchers %v, want %v %q", cluster, m, w.sanType, w.san)
				}
				if ctx.GetSni() != w.sni {
					t.Errorf("%s: SNI %q, want %q", cluster, ctx.GetSni(), w.sni)
				}
				if a := common.GetAlpnProtocols(); len(a) != 1 || a[0] != "h2" {
					t.Errorf("%s: ALPN %v, want [h2] (grpc-go refuses TLS without it)", cluster, a)
				}
				if p := common.GetTlsParams(); p.GetTlsMinimumProtocolVersion() != tlsv3.TlsParameters_TLSv1_2 || p.GetTlsMaximumProtocolVersion() != tlsv3.TlsParameters_TLSv1_3 {
					t.Errorf("%s: TLS params %v", cluster, p)
				}
				certs := common.GetTlsCertificates()
				switch {
				case w.cert && (len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != "/tls/tls.crt" || certs[0].GetPrivateKey().GetFilename() != "/tls/tls.key"):
					t.Errorf("%s: client certificate %v, want /tls/tls.crt + /tls/tls.key", cluster, certs)
				case !w.cert && len(certs) != 0:
					t.Errorf("%s: client certificate %v that was not configured", cluster, certs)
				}
				if clustersByName(res)[cluster].GetTypedExtensionProtocolOptions()[envoy.HTTPProtocolOptions] == nil {
					t.Errorf("%s: no HTTP/2 protocol options", cluster)
				}
			}
		})
	}
}
