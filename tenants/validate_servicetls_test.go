package tenants

import "testing"

// TestValidateMeshConfigServiceTLS: spec.authz.tls and spec.rateLimit.tls
// name files by absolute path, a client certificate as a pair, and a SAN
// that a certificate can carry (DNS name, IP or SPIFFE ID).
func TestValidateMeshConfigServiceTLS(t *testing.T) {
	type tc = validationCase[*MeshConfig]
	authz := func(s ServiceTLS) func(*MeshConfig) {
		return func(m *MeshConfig) { m.Spec.Authz.TLS = &s }
	}
	rl := func(s ServiceTLS) func(*MeshConfig) {
		return func(m *MeshConfig) { m.Spec.RateLimit.TLS = &s }
	}
	const ca, crt, key = "/etc/tenantmesh/tls/ca.crt", "/etc/tenantmesh/tls/tls.crt", "/etc/tenantmesh/tls/tls.key"
	runValidationCases(t, baseMesh, nil, []tc{
		{"mutual TLS, SPIFFE SAN", authz(ServiceTLS{CAFile: ca, SAN: "spiffe://tenantmesh.local/controlplane", CertFile: crt, KeyFile: key}), "", ""},
		{"CA only", authz(ServiceTLS{CAFile: ca}), "", ""},
		{"DNS SAN", rl(ServiceTLS{CAFile: ca, SAN: "ratelimit.tenantmesh-system.svc"}), "", ""},
		{"IP SAN", rl(ServiceTLS{CAFile: ca, SAN: "fd00::5", CertFile: crt, KeyFile: key}), "", ""},
		{"SPIFFE ID of another PKI", rl(ServiceTLS{CAFile: ca, SAN: "spiffe://example.org/ns/rl/sa/ratelimit"}), "", ""},
		{"no CA", authz(ServiceTLS{SAN: "tenantmesh"}), "spec.authz.tls.caFile", "absolute path"},
		{"relative CA", rl(ServiceTLS{CAFile: "ca.crt"}), "spec.rateLimit.tls.caFile", "absolute path"},
		{"relative cert", authz(ServiceTLS{CAFile: ca, CertFile: "tls.crt", KeyFile: key}), "spec.authz.tls.certFile", "absolute path"},
		{"relative key", rl(ServiceTLS{CAFile: ca, CertFile: crt, KeyFile: "tls.key"}), "spec.rateLimit.tls.keyFile", "absolute path"},
		{"cert without key", authz(ServiceTLS{CAFile: ca, CertFile: crt}), "spec.authz.tls.keyFile", "required with certFile"},
		{"key without cert", rl(ServiceTLS{CAFile: ca, KeyFile: key}), "spec.rateLimit.tls.certFile", "required with keyFile"},
		{"SAN with a port", authz(ServiceTLS{CAFile: ca, SAN: "tenantmesh:9191"}), "spec.authz.tls.san", "must not carry a port"},
		{"SAN with another scheme", authz(ServiceTLS{CAFile: ca, SAN: "https://tenantmesh"}), "spec.authz.tls.san", "or a spiffe:// URI"},
		{"SPIFFE trust domain only", authz(ServiceTLS{CAFile: ca, SAN: "spiffe://tenantmesh.local"}), "spec.authz.tls.san", "names a trust domain"},
		{"SPIFFE with a port", rl(ServiceTLS{CAFile: ca, SAN: "spiffe://tenantmesh.local:8443/ratelimit/rl"}), "spec.rateLimit.tls.san", "no port"},
		{"SPIFFE with a query", rl(ServiceTLS{CAFile: ca, SAN: "spiffe://tenantmesh.local/ratelimit/rl?x=1"}), "spec.rateLimit.tls.san", "not a SPIFFE ID"},
		{"SPIFFE with an empty segment", rl(ServiceTLS{CAFile: ca, SAN: "spiffe://tenantmesh.local/ratelimit//rl"}), "spec.rateLimit.tls.san", "path segment"},
		{"SPIFFE upper-case trust domain", rl(ServiceTLS{CAFile: ca, SAN: "spiffe://TenantMesh/controlplane"}), "spec.rateLimit.tls.san", "trust domain"},
	})
}
