package xds

import (
	"strconv"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

func sidecarTestTenant(id, display string) *tenants.Tenant {
	return &tenants.Tenant{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
		Metadata: tenants.ObjectMeta{Name: id},
		Spec: tenants.TenantSpec{DisplayName: display, Upstreams: []tenants.Upstream{{
			Name: "svc", Endpoints: []tenants.Endpoint{{Address: "10.0.0.1", Port: 15006}},
		}}},
	}
}

// TestSidecarGroupSyncsOnlyOnItsInputs: a sidecar group pushes when its
// tenant or the shared services change, and nothing when another tenant does.
func TestSidecarGroupSyncsOnlyOnItsInputs(t *testing.T) {
	a, b := sidecarTestTenant("tenant-a", "A"), sidecarTestTenant("tenant-b", "B")
	node := translate.Node{ID: "a-1", Role: translate.RoleSidecar, Tenant: "tenant-a", Service: "svc", AppPort: 8080}
	g := newGroup(groupKey(node), node, "t")
	same := func(_ string, t *tenants.Tenant) *tenants.Tenant { return t }
	var prev *tenants.Catalog
	sync := func(in tenants.Input) *changeSet {
		t.Helper()
		cat := tenants.NewCatalog(in, prev)
		prev = cat
		cs, terrs, err := g.sync(cat, same)
		if err != nil || len(terrs) > 0 {
			t.Fatal(err, terrs)
		}
		return cs
	}
	cs := sync(tenants.Input{Revision: 1, Tenants: []*tenants.Tenant{a, b}})
	if len(cs.upserts[resourcev3.ListenerType]) != 2 || len(cs.upserts[resourcev3.RouteType]) != 2 {
		t.Fatalf("first sync: %v", cs.upserts)
	}
	if cs := sync(tenants.Input{Revision: 2, Tenants: []*tenants.Tenant{a, sidecarTestTenant("tenant-b", "B2")}}); !cs.empty() {
		t.Errorf("another tenant changed, the sidecar got %v", cs.upserts)
	}
	a2 := sidecarTestTenant("tenant-a", "A")
	a2.Spec.Upstreams = append(a2.Spec.Upstreams, tenants.Upstream{Name: "other", Endpoints: []tenants.Endpoint{{Address: "10.0.0.2", Port: 15006}}})
	cs = sync(tenants.Input{Revision: 3, Tenants: []*tenants.Tenant{a2, b}})
	if cs.upserts[resourcev3.ClusterType]["tenant-a.other"] == nil || cs.upserts[resourcev3.RouteType]["sidecar-outbound"] == nil {
		t.Errorf("own tenant gained a service: %v", cs.upserts)
	}
	if len(cs.upserts[resourcev3.ListenerType]) != 0 {
		t.Errorf("listeners did not change but were pushed: %v", cs.upserts[resourcev3.ListenerType])
	}
	geo := &tenants.SharedService{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
		Metadata: tenants.ObjectMeta{Name: "geo"},
		Spec:     tenants.SharedServiceSpec{Endpoints: []tenants.Endpoint{{Address: "10.9.0.1", Port: 80}}},
	}
	cs = sync(tenants.Input{Revision: 4, Tenants: []*tenants.Tenant{a2, b}, SharedServices: []*tenants.SharedService{geo}})
	if cs.upserts[resourcev3.ClusterType]["tenant-a.shared.geo"] == nil {
		t.Errorf("shared service added: %v", cs.upserts)
	}
}

// BenchmarkSidecarGroupUnrelatedChange is what a change to some other
// tenant costs one sidecar group among 1,000 tenants (it should be a
// pointer comparison, not a translation).
func BenchmarkSidecarGroupUnrelatedChange(b *testing.B) {
	var ts []*tenants.Tenant
	for i := 0; i < 1000; i++ {
		ts = append(ts, sidecarTestTenant("tenant-"+string(rune('a'+i%26))+"-"+itoa(i), "x"))
	}
	node := translate.Node{ID: "s", Role: translate.RoleSidecar, Tenant: ts[0].ID(), Service: "svc", AppPort: 8080}
	g := newGroup(groupKey(node), node, "b")
	same := func(_ string, t *tenants.Tenant) *tenants.Tenant { return t }
	cat := tenants.NewCatalog(tenants.Input{Revision: 1, Tenants: ts}, nil)
	if _, _, err := g.sync(cat, same); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ts[1] = sidecarTestTenant(ts[1].ID(), itoa(i))
		cat = tenants.NewCatalog(tenants.Input{Revision: int64(i + 2), Tenants: ts}, cat)
		b.StartTimer()
		cs, _, err := g.sync(cat, same)
		if err != nil || !cs.empty() {
			b.Fatal(err, cs.upserts)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
