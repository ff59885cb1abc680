package xds

import (
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// TestEdgeGroupSharedServiceChange: a tenant's edge virtual host mounts
// the shared services it may call, so a change to a service's timeout
// resends the virtual hosts (the tenant is re-translated), while an
// endpoint change only touches the alias clusters and the assignment.
func TestEdgeGroupSharedServiceChange(t *testing.T) {
	a := sidecarTestTenant("tenant-a", "A")
	a.Spec.Hosts = []string{"tenant-a.example.com"}
	a.Spec.Routes = []tenants.Route{{Name: "web", Match: tenants.RouteMatch{PathPrefix: "/"}, Upstream: "svc"}}
	geo := func(addr, timeout string) *tenants.SharedService {
		return &tenants.SharedService{
			TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
			Metadata: tenants.ObjectMeta{Name: "geo"},
			Spec:     tenants.SharedServiceSpec{Endpoints: []tenants.Endpoint{{Address: addr, Port: 80}}, Timeout: tenants.Duration(timeout)},
		}
	}
	node := translate.Node{ID: "e-1", Role: translate.RoleEdge}
	g := newGroup(groupKey(node), node, "t")
	same := func(_ string, t *tenants.Tenant) *tenants.Tenant { return t }
	var prev *tenants.Catalog
	sync := func(rev int64, s *tenants.SharedService) *changeSet {
		t.Helper()
		cat := tenants.NewCatalog(tenants.Input{Revision: rev, Tenants: []*tenants.Tenant{a}, SharedServices: []*tenants.SharedService{s}}, prev)
		prev = cat
		cs, terrs, err := g.sync(cat, same)
		if err != nil || len(terrs) > 0 {
			t.Fatal(err, terrs)
		}
		return cs
	}
	if cs := sync(1, geo("10.9.0.1", "5s")); cs.upserts[resourcev3.VirtualHostType]["edge-routes/tenant-a"] == nil {
		t.Fatalf("first sync sent virtual hosts %v", keys2(cs.upserts[resourcev3.VirtualHostType]))
	}
	cs := sync(2, geo("10.9.0.2", "5s"))
	if len(cs.upserts[resourcev3.VirtualHostType]) != 0 {
		t.Errorf("an endpoint change resent virtual hosts %v", keys2(cs.upserts[resourcev3.VirtualHostType]))
	}
	if cs.upserts[resourcev3.EndpointType][translate.SharedEDSName("geo")] == nil {
		t.Errorf("the endpoint change was not pushed (endpoints sent: %v)", keys2(cs.upserts[resourcev3.EndpointType]))
	}
	if cs := sync(3, geo("10.9.0.2", "9s")); cs.upserts[resourcev3.VirtualHostType]["edge-routes/tenant-a"] == nil {
		t.Errorf("a timeout change did not reach tenant-a's mount (virtual hosts sent: %v)", keys2(cs.upserts[resourcev3.VirtualHostType]))
	}
}

func keys2[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
