package translate

import (
	"os"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// TestExampleTenants translates the repository's example tenants (used by
// the README, the demo and make run) for every role — edge, grpc, and a
// sidecar and a grpc-server for every upstream of every tenant — and
// checks each result passes the publish gate (Validate).
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
	for _, tt := range cat.Tenants() {
		for _, u := range tt.Spec.Upstreams {
			for _, role := range []Role{RoleSidecar, RoleGRPCServer} {
				node := Node{ID: "n", Role: role, Tenant: tt.ID(), Service: u.Name, AppPort: 8080, AppAddress: "10.0.0.1"}
				res, _, err := Translate(cat, node)
				if err != nil {
					t.Errorf("%s %s/%s: %v", role, tt.ID(), u.Name, err)
					continue
				}
				checkPublishable(t, res, role)
			}
		}
	}
}
