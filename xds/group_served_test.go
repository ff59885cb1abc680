package xds

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// pinTestTenant is tenant-a with a shared-service alias whose
// max_requests is its maxConcurrentRequests.
func pinTestTenant(maxConc int, rev string) *tenants.Tenant {
	t := sidecarTestTenant("tenant-a", "A")
	t.Metadata.ResourceVersion = rev
	t.Spec.Hosts = []string{"tenant-a.example.com"}
	t.Spec.Routes = []tenants.Route{{Name: "web", Match: tenants.RouteMatch{PathPrefix: "/"}, Upstream: "svc"}}
	t.Spec.MaxConcurrentRequests = maxConc
	return t
}

var pinTestGeo = &tenants.SharedService{
	TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
	Metadata: tenants.ObjectMeta{Name: "geo"},
	Spec:     tenants.SharedServiceSpec{Endpoints: []tenants.Endpoint{{Address: "10.9.0.1", Port: 80}}},
}

// aliasMaxRequests is the max_requests of a published alias cluster.
func aliasMaxRequests(t *testing.T, g *group, name string) uint32 {
	t.Helper()
	c, ok := g.published[resourcev3.ClusterType][name].(*clusterv3.Cluster)
	if !ok {
		t.Fatalf("no cluster %s published", name)
	}
	return c.GetCircuitBreakers().GetThresholds()[0].GetMaxRequests().GetValue()
}

// TestEdgeAliasClusterIsOfTheServedVersion: a tenant served an older
// version than the Catalog's (the Catalog's was NACKed, or does not
// translate) gets the shared-service alias cluster of that older version
// too, not one built from the version it is not served.
func TestEdgeAliasClusterIsOfTheServedVersion(t *testing.T) {
	v1 := pinTestTenant(10, "1")
	for _, tc := range []struct {
		name string
		v2   *tenants.Tenant
		pin  bool
	}{
		{"NACK pin", pinTestTenant(20, "2"), true},
		{"translation failure", func() *tenants.Tenant {
			t := pinTestTenant(20, "2")
			t.Spec.Upstreams[0].Endpoints = append(t.Spec.Upstreams[0].Endpoints, t.Spec.Upstreams[0].Endpoints[0])
			return t
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := translate.Node{ID: "e", Role: translate.RoleEdge}
			g := newGroup(groupKey(node), node, "t")
			in := tenants.Input{Revision: 1, Tenants: []*tenants.Tenant{v1}, SharedServices: []*tenants.SharedService{pinTestGeo}}
			cat1 := tenants.NewCatalog(in, nil)
			same := func(_ string, t *tenants.Tenant) *tenants.Tenant { return t }
			if _, terrs, err := g.sync(cat1, same); err != nil || len(terrs) > 0 {
				t.Fatal(err, terrs)
			}
			if got := aliasMaxRequests(t, g, "tenant-a.shared.geo"); got != 10 {
				t.Fatalf("alias max_requests %d, want 10", got)
			}
			served1, _ := cat1.Tenant("tenant-a")
			in.Revision, in.Tenants = 2, []*tenants.Tenant{tc.v2}
			if !tc.pin {
				// Another tenant joins: the shared aggregates are rebuilt.
				in.Tenants = append(in.Tenants, sidecarTestTenant("tenant-b", "B"))
			}
			cat2 := tenants.NewCatalog(in, cat1)
			if tc.pin {
				// v2 is published, then a proxy rejects it.
				if _, _, err := g.sync(cat2, same); err != nil {
					t.Fatal(err)
				}
				if got := aliasMaxRequests(t, g, "tenant-a.shared.geo"); got != 20 {
					t.Fatalf("alias max_requests %d, want v2's 20", got)
				}
			}
			effective := same
			if tc.pin {
				effective = func(string, *tenants.Tenant) *tenants.Tenant { return served1 }
			}
			if _, _, err := g.sync(cat2, effective); err != nil {
				t.Fatal(err)
			}
			if got := aliasMaxRequests(t, g, "tenant-a.shared.geo"); got != 10 {
				t.Errorf("alias max_requests %d, want 10: the version tenant-a is served", got)
			}
		})
	}
}

// TestSidecarGroupHonoursNACKPin: a tenant pinned to its last accepted
// version (a proxy rejected the Catalog's) is served that version by its
// sidecars too, and as a tenant the Catalog does not hold when it has no
// accepted version. The health check path, exempt from the inbound
// token check, shows which version a sidecar got.
func TestSidecarGroupHonoursNACKPin(t *testing.T) {
	version := func(path string) *tenants.Tenant {
		v := sidecarTestTenant("tenant-a", "A")
		v.Spec.Upstreams[0].HealthCheck = &tenants.HealthCheck{HTTP: &tenants.HTTPHealthCheck{Path: path}}
		return v
	}
	cat1 := tenants.NewCatalog(tenants.Input{Revision: 1, Tenants: []*tenants.Tenant{version("/v1-health")}}, nil)
	cat2 := tenants.NewCatalog(tenants.Input{Revision: 2, Tenants: []*tenants.Tenant{version("/v2-health")}}, cat1)
	accepted, _ := cat1.Tenant("tenant-a")
	same := func(_ string, t *tenants.Tenant) *tenants.Tenant { return t }
	for _, role := range []translate.Role{translate.RoleSidecar, translate.RoleGRPCServer} {
		t.Run(string(role), func(t *testing.T) {
			node := translate.Node{ID: "s", Role: role, Tenant: "tenant-a", Service: "svc", AppPort: 8080}
			g := newGroup(groupKey(node), node, "t")
			for _, s := range []struct {
				cat       *tenants.Catalog
				effective effectiveFunc
				want      string // the health path published ("": none)
			}{
				{cat1, same, "/v1-health"},
				{cat2, same, "/v2-health"},
				{cat2, func(string, *tenants.Tenant) *tenants.Tenant { return accepted }, "/v1-health"}, // v2 NACKed
				{cat2, func(string, *tenants.Tenant) *tenants.Tenant { return nil }, ""},                // none accepted
			} {
				if _, terrs, err := g.sync(s.cat, s.effective); err != nil || len(terrs) > 0 {
					t.Fatal(err, terrs)
				}
				text := publishedText(g)
				for _, p := range []string{"/v1-health", "/v2-health"} {
					if strings.Contains(text, p) != (p == s.want) {
						t.Errorf("want %q published; %q published: %v", s.want, p, strings.Contains(text, p))
					}
				}
			}
		})
	}
}

// publishedText is every resource a group published, as text.
func publishedText(g *group) string {
	var b strings.Builder
	for _, typ := range resourceTypes {
		for _, r := range g.published[typ] {
			b.WriteString(prototext.Format(r))
		}
	}
	return b.String()
}

// TestFailingTenantKeepsItsLastGoodVersion: a tenant whose new version
// does not translate keeps its last good version, and that version
// follows the mesh and the shared services: the edge rebuilds its host
// keys for a new edge port, its sidecar gets a new shared service.
func TestFailingTenantKeepsItsLastGoodVersion(t *testing.T) {
	good := pinTestTenant(0, "1")
	bad := pinTestTenant(0, "2")
	bad.Spec.Upstreams[0].Endpoints = append(bad.Spec.Upstreams[0].Endpoints, bad.Spec.Upstreams[0].Endpoints[0])
	mesh := func(port int, rev string) *tenants.MeshConfig {
		return &tenants.MeshConfig{Metadata: tenants.ObjectMeta{Name: tenants.MeshConfigName, ResourceVersion: rev}, Spec: tenants.MeshConfigSpec{EdgePort: port}}
	}
	same := func(_ string, t *tenants.Tenant) *tenants.Tenant { return t }
	type step struct {
		in   tenants.Input
		want func(t *testing.T, g *group)
	}
	for _, tc := range []struct {
		node  translate.Node
		steps []step
	}{
		{translate.Node{ID: "e", Role: translate.RoleEdge}, []step{
			{tenants.Input{Revision: 1, Mesh: mesh(10000, "1"), Tenants: []*tenants.Tenant{good}}, nil},
			{tenants.Input{Revision: 2, Mesh: mesh(10000, "1"), Tenants: []*tenants.Tenant{bad}}, nil},
			{tenants.Input{Revision: 3, Mesh: mesh(10080, "3"), Tenants: []*tenants.Tenant{bad}}, func(t *testing.T, g *group) {
				vh, _ := g.published[resourcev3.VirtualHostType]["edge-routes/tenant-a"].(*routev3.VirtualHost)
				if !slices.Contains(vh.GetDomains(), "*|tenant-a.example.com:10080") {
					t.Errorf("tenant-a's domains %v lack the new edge port's key", vh.GetDomains())
				}
			}},
		}},
		{translate.Node{ID: "s", Role: translate.RoleSidecar, Tenant: "tenant-a", Service: "svc", AppPort: 8080}, []step{
			{tenants.Input{Revision: 1, Tenants: []*tenants.Tenant{good}}, nil},
			{tenants.Input{Revision: 2, Tenants: []*tenants.Tenant{bad}}, nil},
			{tenants.Input{Revision: 3, Tenants: []*tenants.Tenant{bad}, SharedServices: []*tenants.SharedService{pinTestGeo}}, func(t *testing.T, g *group) {
				if g.published[resourcev3.ClusterType]["tenant-a.shared.geo"] == nil {
					t.Errorf("the sidecar did not get the new shared service: clusters %v", keys(g.published[resourcev3.ClusterType]))
				}
			}},
		}},
	} {
		t.Run(string(tc.node.Role), func(t *testing.T) {
			g := newGroup(groupKey(tc.node), tc.node, "t")
			var prev *tenants.Catalog
			for i, s := range tc.steps {
				cat := tenants.NewCatalog(s.in, prev)
				prev = cat
				_, terrs, err := g.sync(cat, same)
				if err != nil || (i > 0) != (len(terrs) > 0) {
					t.Fatalf("step %d: %v %v", i, err, terrs)
				}
				if s.want != nil {
					s.want(t, g)
				}
			}
		})
	}
}

// TestExcludedTenantStaysOutOnTheFastPath: a tenant Assemble leaves out
// (its host is held by a version of another tenant the group still
// serves) gets none of its resources published, also when it then changes
// only its own resources, which skips the rebuild; and each of its
// versions is reported as left out.
func TestExcludedTenantStaysOutOnTheFastPath(t *testing.T) {
	version := func(id, host, rev string, port int) *tenants.Tenant {
		v := sidecarTestTenant(id, id)
		v.Metadata.ResourceVersion = rev
		v.Spec.Hosts = []string{host}
		v.Spec.Routes = []tenants.Route{{Name: "web", Match: tenants.RouteMatch{PathPrefix: "/"}, Upstream: "svc"}}
		v.Spec.Upstreams[0].Endpoints[0].Port = port
		return v
	}
	a1, b1 := version("tenant-a", "shop.example.com", "1", 8080), version("tenant-b", "b.example.com", "2", 8080)
	a2, b2 := version("tenant-a", "a.example.com", "3", 8080), version("tenant-b", "shop.example.com", "4", 8080)
	b3 := version("tenant-b", "shop.example.com", "5", 9090) // an endpoint change only
	cat1 := tenants.NewCatalog(tenants.Input{Revision: 1, Tenants: []*tenants.Tenant{a1, b1}}, nil)
	cat2 := tenants.NewCatalog(tenants.Input{Revision: 2, Tenants: []*tenants.Tenant{a2, b2}}, cat1)
	cat3 := tenants.NewCatalog(tenants.Input{Revision: 3, Tenants: []*tenants.Tenant{a2, b3}}, cat2)
	accepted, _ := cat1.Tenant("tenant-a")
	rejected, _ := cat2.Tenant("tenant-a")
	// tenant-a's move to a.example.com was NACKed: it keeps shop.example.com.
	effective := func(id string, t *tenants.Tenant) *tenants.Tenant {
		if t == rejected {
			return accepted
		}
		return t
	}
	node := translate.Node{ID: "e", Role: translate.RoleEdge}
	g := newGroup(groupKey(node), node, "t")
	for i, cat := range []*tenants.Catalog{cat1, cat2, cat3} {
		_, terrs, err := g.sync(cat, effective)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		if terrs["tenant-b"] == nil {
			t.Errorf("sync %d: no error for tenant-b, whose host tenant-a holds", i+1)
		}
		for _, typ := range resourceTypes {
			for name := range g.published[typ] {
				if strings.HasPrefix(name, "tenant-b") || strings.HasPrefix(name, "edge-routes/tenant-b") {
					t.Errorf("sync %d: tenant-b's %s %s is published", i+1, shortType(typ), name)
				}
			}
		}
	}
}
