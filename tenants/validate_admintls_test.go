package tenants

import "testing"

func TestValidateMeshConfigAdminTLS(t *testing.T) {
	type tc = validationCase[*MeshConfig]
	set := func(a AdminTLS) func(*MeshConfig) {
		return func(m *MeshConfig) { m.Spec.ControlPlaneAdminTLS = &a }
	}
	runValidationCases(t, baseMesh, nil, []tc{
		{"CA and DNS SAN", set(AdminTLS{CAFile: "/etc/tenantmesh/ca.crt", SAN: "tenantmesh.tenantmesh-system.svc"}), "", ""},
		{"CA only", set(AdminTLS{CAFile: "/etc/tenantmesh/ca.crt"}), "", ""},
		{"IP SAN", set(AdminTLS{CAFile: "/ca.pem", SAN: "10.0.0.5"}), "", ""},
		{"no CA", set(AdminTLS{SAN: "tenantmesh"}), "spec.controlPlaneAdminTLS.caFile", "absolute path"},
		{"relative CA", set(AdminTLS{CAFile: "ca.crt"}), "spec.controlPlaneAdminTLS.caFile", "absolute path"},
		{"SAN with a port", set(AdminTLS{CAFile: "/ca.pem", SAN: "tenantmesh:9102"}), "spec.controlPlaneAdminTLS.san", "must not carry a port"},
		{"SAN with a scheme", set(AdminTLS{CAFile: "/ca.pem", SAN: "https://tenantmesh"}), "spec.controlPlaneAdminTLS.san", "without a scheme"},
	})
}
