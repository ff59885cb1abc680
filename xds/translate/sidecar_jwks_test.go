package translate

import (
	"fmt"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// sidecarWithMesh translates tenant-a's sidecar under a MeshConfig spec
// given as YAML lines, and checks the result passes the gate.
func sidecarWithMesh(t *testing.T, spec string) *Resources {
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
  upstreams:
    - name: executive
      endpoints: [{address: 10.0.0.1, port: 15006}]
`, spec))
	res := translateSidecar(t, cat, sidecarNode("tenant-a", "executive"))
	if err := Validate(res); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return res
}

func jwksTLSContext(t *testing.T, res *Resources) *tlsv3.UpstreamTlsContext {
	t.Helper()
	c := clustersByName(res)[JWKSClusterName]
	if c == nil {
		t.Fatal("no tenantmesh-jwks cluster")
	}
	ts := c.GetTransportSocket()
	if ts == nil {
		return nil
	}
	if ts.GetName() != "envoy.transport_sockets.tls" {
		t.Fatalf("transport socket %q", ts.GetName())
	}
	var ctx tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	return &ctx
}

// Without spec.controlPlaneAdminTLS the JWKS is fetched over plain HTTP,
// as before; with it, over TLS that checks the chain against the CA file
// and the certificate's SAN against the configured (or dialled) name.
func TestSidecarJWKSClusterTLS(t *testing.T) {
	for _, c := range []struct {
		name, spec string
		tls        bool
		sanType    tlsv3.SubjectAltNameMatcher_SanType
		san, sni   string
		uri        string
	}{
		{name: "plaintext", spec: "  controlPlaneAdmin: 127.0.0.1:9102",
			uri: "http://127.0.0.1:9102/.well-known/jwks.json"},
		{name: "DNS host, SAN defaulted", spec: "  controlPlaneAdmin: tenantmesh.mesh.svc:9102\n  controlPlaneAdminTLS: {caFile: /etc/ca.crt}",
			tls: true, sanType: tlsv3.SubjectAltNameMatcher_DNS, san: "tenantmesh.mesh.svc", sni: "tenantmesh.mesh.svc",
			uri: "https://tenantmesh.mesh.svc:9102/.well-known/jwks.json"},
		{name: "explicit SAN", spec: "  controlPlaneAdmin: 10.0.0.5:9102\n  controlPlaneAdminTLS: {caFile: /etc/ca.crt, san: tenantmesh.mesh.svc}",
			tls: true, sanType: tlsv3.SubjectAltNameMatcher_DNS, san: "tenantmesh.mesh.svc", sni: "tenantmesh.mesh.svc",
			uri: "https://10.0.0.5:9102/.well-known/jwks.json"},
		{name: "IP host: IP SAN, no SNI", spec: "  controlPlaneAdmin: 10.0.0.5:9102\n  controlPlaneAdminTLS: {caFile: /etc/ca.crt}",
			tls: true, sanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS, san: "10.0.0.5",
			uri: "https://10.0.0.5:9102/.well-known/jwks.json"},
		{name: "IPv6 SAN in canonical form", spec: "  controlPlaneAdmin: \"[fd00::5]:9102\"\n  controlPlaneAdminTLS: {caFile: /etc/ca.crt, san: \"FD00:0:0::5\"}",
			tls: true, sanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS, san: "fd00::5",
			uri: "https://[fd00::5]:9102/.well-known/jwks.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := sidecarWithMesh(t, c.spec)
			jwt, _ := inboundFilters(t, res)
			if got := jwt.GetProviders()[ContextIssuer].GetRemoteJwks().GetHttpUri().GetUri(); got != c.uri {
				t.Errorf("remote JWKS uri %q, want %q", got, c.uri)
			}
			ctx := jwksTLSContext(t, res)
			if !c.tls {
				if ctx != nil {
					t.Fatalf("TLS without spec.controlPlaneAdminTLS: %v", ctx)
				}
				return
			}
			if ctx == nil {
				t.Fatal("no TLS transport socket")
			}
			v := ctx.GetCommonTlsContext().GetValidationContext()
			if v.GetTrustedCa().GetFilename() != "/etc/ca.crt" {
				t.Errorf("trusted CA %v, want /etc/ca.crt", v.GetTrustedCa())
			}
			m := v.GetMatchTypedSubjectAltNames()
			if len(m) != 1 || m[0].GetSanType() != c.sanType || m[0].GetMatcher().GetExact() != c.san {
				t.Errorf("SAN matchers %v, want %v %q", m, c.sanType, c.san)
			}
			if ctx.GetSni() != c.sni {
				t.Errorf("SNI %q, want %q", ctx.GetSni(), c.sni)
			}
			if len(ctx.GetCommonTlsContext().GetTlsCertificates()) != 0 {
				t.Error("the JWKS fetch presents a client certificate; the public admin listener asks for none")
			}
		})
	}
}
