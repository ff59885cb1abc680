package translate

import (
	"os"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// TestExampleTenants translates the repository's example tenants (used by
// the README and the demo) for both roles and checks the result is
// publishable.
func TestExampleTenants(t *testing.T) {
	const dir = "../../examples/tenants"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no examples: %v", err)
	}
	docs, err := tenants.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := tenants.Input{Revision: 1}
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *tenants.MeshConfig:
			in.Mesh = o
		case *tenants.Tier:
			in.Tiers = append(in.Tiers, o)
		case *tenants.Tenant:
			in.Tenants = append(in.Tenants, o)
		}
	}
	cat := tenants.NewCatalog(in, nil)
	if cat.Len() == 0 || len(cat.Rejected()) > 0 {
		t.Fatalf("%d tenants, rejected %v", cat.Len(), cat.Rejected())
	}
	for _, role := range []Role{RoleEdge, RoleGRPC} {
		res, terrs, err := Translate(cat, Node{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		if err := terrs.Err(); err != nil {
			t.Errorf("%s: %v", role, err)
		}
		checkPublishable(t, res, role)
	}
}
