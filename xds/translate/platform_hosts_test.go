package translate

import (
	"os"
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// A tenant claiming a platform host would get the virtual host domain
// "*|api.example.com", a suffix wildcard, which Envoy prefers over the
// path form's prefix wildcards "/tenants/<id>/*" and the shared virtual
// host's "*" (route_components.proto, VirtualHost.domains): every path
// on the platform host would be the squatter's. The Catalog leaves such a
// tenant out (tenants.tenantIndex.admit), so the platform host keeps
// serving every tenant's path form and the shared services. platformHosts
// only reserves names; routing is unchanged (README "Platform hosts").
func TestPlatformHostIsNeverATenantsVirtualHost(t *testing.T) {
	data, err := os.ReadFile("testdata/in/both.yaml")
	if err != nil {
		t.Fatal(err)
	}
	squatter := `
---
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: squatter, resourceVersion: "1"}
spec:
  hosts: [api.example.com]
  routes:
    - name: all
      match: {pathPrefix: /}
      upstream: u
  upstreams:
    - name: u
      endpoints: [{address: 10.9.9.9, port: 80}]
---
apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec: {platformHosts: [api.example.com]}
`
	docs, err := tenants.Decode("in.yaml", append(data, squatter...))
	if err != nil {
		t.Fatal(err)
	}
	in := tenants.Input{Revision: 1}
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *tenants.MeshConfig:
			in.Mesh = o
		case *tenants.Tenant:
			in.Tenants = append(in.Tenants, o)
		}
	}
	cat := tenants.NewCatalog(in, nil)
	if err := cat.Rejected()["squatter"]; err == nil || !strings.Contains(err.Error(), "platform host") {
		t.Fatalf("the squatter must be rejected for the platform host, rejected: %v", cat.Rejected())
	}
	res := translateEdge(t, cat)
	for _, c := range []struct{ path, want string }{
		{"/tenants/tenant-a/api/executive/x", VirtualHostName("tenant-a")},
		{"/tenants/tenant-ab/api/executive/x", VirtualHostName("tenant-ab")},
		{"/shared/billing/x", SharedVirtualHost},
		{"/", SharedVirtualHost},
	} {
		if got := selectVirtualHost(t, res, "api.example.com", c.path).GetName(); got != c.want {
			t.Errorf("api.example.com%s: virtual host %q, want %q", c.path, got, c.want)
		}
	}
}
