package translate

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

func clustersByName(res *Resources) map[string]*clusterv3.Cluster {
	out := map[string]*clusterv3.Cluster{}
	for _, r := range res.Clusters {
		c := r.(*clusterv3.Cluster)
		out[c.GetName()] = c
	}
	return out
}

// TestSharedServiceAliasPerTenant: every entitled, active tenant gets its
// own alias of a shared service with its own breakers; the shared virtual
// host picks the alias by the x-tenant-id authz verified.
func TestSharedServiceAliasPerTenant(t *testing.T) {
	cat := load(t, "shared-edge")
	res := translateEdge(t, cat)
	cs := clustersByName(res)
	maxReq := func(name string) uint32 {
		c := cs[name]
		if c == nil {
			return 0
		}
		return c.GetCircuitBreakers().GetThresholds()[0].GetMaxRequests().GetValue()
	}
	// geo caps every tenant at 100; tenant-a's own budget is 50, tenant-b's
	// (tier free) 20: the smaller applies.
	for name, want := range map[string]uint32{"tenant-a.shared.geo": 50, "tenant-b.shared.geo": 20, "tenant-a.shared.models": 50} {
		if got := maxReq(name); got != want {
			t.Errorf("%s max_requests %d, want %d", name, got, want)
		}
	}
	for _, name := range []string{"tenant-b.shared.models", "tenant-c.shared.geo", "tenant-c.shared.models", "tenant-a.shared.labs"} {
		if cs[name] != nil {
			t.Errorf("%s exists: not entitled or suspended", name)
		}
	}
	if sn := cs["tenant-a.shared.geo"].GetEdsClusterConfig().GetServiceName(); sn != SharedEDSName("geo") ||
		cs["tenant-b.shared.geo"].GetEdsClusterConfig().GetServiceName() != sn {
		t.Errorf("aliases must share one assignment, got %q", sn)
	}

	rc := edgeRouteConfigOf(t, res)
	tree := vhost(rc, SharedVirtualHost).GetMatcher().GetMatcherTree().GetPrefixMatchMap().GetMap()
	geo := tree[SharedPathPrefix("geo")].GetMatcher()
	if geo == nil {
		t.Fatal("no nested matcher under /shared/geo/")
	}
	var hdr matcherv3.HttpRequestHeaderMatchInput
	if err := geo.GetMatcherTree().GetInput().GetTypedConfig().UnmarshalTo(&hdr); err != nil || hdr.GetHeaderName() != TenantHeader {
		t.Errorf("geo matches on %q (%v), want the x-tenant-id authz sets", hdr.GetHeaderName(), err)
	}
	byTenant := geo.GetMatcherTree().GetExactMatchMap().GetMap()
	if len(byTenant) != 2 {
		t.Fatalf("geo routes for %d tenants, want tenant-a and tenant-b", len(byTenant))
	}
	for id, om := range byTenant {
		rs, err := envoy.ActionRoutes(om.GetAction())
		if err != nil {
			t.Fatal(err)
		}
		if got := rs[0].GetRoute().GetCluster(); got != SharedClusterName(id, "geo") {
			t.Errorf("x-tenant-id %s routes to %s", id, got)
		}
		checkSharedAuthz(t, rs[0].GetTypedPerFilterConfig()[envoy.FilterExtAuthz].GetValue(), "geo")
	}
	fb, err := envoy.ActionRoutes(geo.GetOnNoMatch().GetAction())
	if err != nil {
		t.Fatal(err)
	}
	if fb[0].GetDirectResponse().GetStatus() != 403 || fb[0].GetRoute() != nil {
		t.Errorf("fallback must refuse, not route: %v", fb[0])
	}
	checkSharedAuthz(t, fb[0].GetTypedPerFilterConfig()[envoy.FilterExtAuthz].GetValue(), "geo")
	if tree[SharedPathPrefix("labs")].GetAction() == nil {
		t.Error("labs (nobody entitled) must mount only its fallback")
	}
}

func checkSharedAuthz(t *testing.T, raw []byte, name string) {
	t.Helper()
	var pr extauthzv3.ExtAuthzPerRoute
	if err := proto.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	ext := pr.GetCheckSettings().GetContextExtensions()
	if ext[KeySharedService] != name || ext[KeyTenantID] != "" {
		t.Errorf("context extensions %v", ext)
	}
}

// BenchmarkSharedEdge is what shared services add to every slow-path edge
// sync (an aggregate change): one alias cluster and one matcher entry per
// entitled tenant per service, here 1,000 tenants and one service every
// tenant may call. Compare with BenchmarkSidecar: a sidecar is translated
// whole on every change.
func BenchmarkSharedEdge(b *testing.B) {
	in := tenants.Input{Revision: 1, SharedServices: []*tenants.SharedService{{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
		Metadata: tenants.ObjectMeta{Name: "geo"},
		Spec:     tenants.SharedServiceSpec{Endpoints: []tenants.Endpoint{{Address: "10.9.0.1", Port: 8080}}},
	}}}
	for i := 0; i < 1000; i++ {
		in.Tenants = append(in.Tenants, benchTenant(i))
	}
	cat := tenants.NewCatalog(in, nil)
	b.ReportAllocs()
	for b.Loop() {
		se, err := buildSharedEdge(cat, cat.Tenants())
		if err != nil || len(se.clusters) != 1000 {
			b.Fatal(err, len(se.clusters))
		}
	}
}

// BenchmarkSidecar is one sidecar's full translation (validated), done on
// every catalog change for every sidecar group.
func BenchmarkSidecar(b *testing.B) {
	in := tenants.Input{Revision: 1}
	for i := 0; i < 1000; i++ {
		in.Tenants = append(in.Tenants, benchTenant(i))
	}
	cat := tenants.NewCatalog(in, nil)
	n := Node{Role: RoleSidecar, Tenant: "tenant-00001", Service: "executive", AppPort: 8080}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TranslateSidecar(cat, n); err != nil {
			b.Fatal(err)
		}
	}
}
