package translate

import (
	"slices"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// TestSameEntitlementsCoversTheSharedEdge: two versions of a tenant that
// SameEntitlements and SameAggregateInputs call equal get the same alias
// clusters and the same edge-routes from the same shared services (what a
// cache skips rebuilding), and every input the mounts and aliases read of
// a tenant changes SameEntitlements.
func TestSameEntitlementsCoversTheSharedEdge(t *testing.T) {
	shared := []*tenants.SharedService{
		{Metadata: tenants.ObjectMeta{Name: "geo"}, Spec: tenants.SharedServiceSpec{
			Endpoints: []tenants.Endpoint{{Address: "10.9.0.1", Port: 80}},
			PerTenant: &tenants.SharedPerTenant{CircuitBreaker: &tenants.CircuitBreaker{MaxRequests: 100}}}},
		{Metadata: tenants.ObjectMeta{Name: "labs"}, Spec: tenants.SharedServiceSpec{
			Endpoints: []tenants.Endpoint{{Address: "labs.example.net", Port: 80}}, Features: []string{"labs"}}},
	}
	// A tier without limits: the variants add them.
	plain := &tenants.Tier{Metadata: tenants.ObjectMeta{Name: "plain"}}
	variants := []struct {
		name     string
		edit     func(s *tenants.TenantSpec)
		relevant bool // the shared edge reads it
	}{
		{"base", func(*tenants.TenantSpec) {}, false},
		{"suspended", func(s *tenants.TenantSpec) { s.Status = tenants.StatusSuspended }, true},
		{"labs feature", func(s *tenants.TenantSpec) { s.Features = []string{"labs", "beta"} }, true},
		{"max concurrent requests", func(s *tenants.TenantSpec) { s.MaxConcurrentRequests = 7 }, true},
		{"global limit", func(s *tenants.TenantSpec) {
			s.RateLimits = &tenants.RateLimits{Global: []tenants.GlobalRateLimit{{Requests: 9, Per: tenants.UnitMinute}}}
		}, true},
		{"local limit", func(s *tenants.TenantSpec) {
			s.RateLimits = &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: 9, Per: tenants.UnitSecond}}
		}, true},
		{"features reordered", func(s *tenants.TenantSpec) { s.Features = []string{"beta", "labs", "labs"} }, true},
		{"local limit rate", func(s *tenants.TenantSpec) {
			s.RateLimits = &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: 10, Per: tenants.UnitSecond}}
		}, true},
		{"route timeout", func(s *tenants.TenantSpec) { s.Routes[0].Timeout = "9s" }, false},
		{"route local limit", func(s *tenants.TenantSpec) {
			s.Routes[0].RateLimit = &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: 3, Per: tenants.UnitSecond}}
		}, false},
		{"endpoint", func(s *tenants.TenantSpec) { s.Upstreams[0].Endpoints[0].Port = 9090 }, false},
		{"hosts", func(s *tenants.TenantSpec) { s.Hosts = []string{"other.example.com"} }, false},
	}
	type version struct {
		name   string
		part   *TenantResources
		shared []types.Resource // alias clusters and edge-routes
	}
	var versions []version
	for i, v := range variants {
		raw := &tenants.Tenant{
			Metadata: tenants.ObjectMeta{Name: "tenant-a"},
			Spec: tenants.TenantSpec{Tier: "plain", Hosts: []string{"tenant-a.example.com"},
				Routes:    []tenants.Route{{Name: "web", Match: tenants.RouteMatch{PathPrefix: "/"}, Upstream: "svc"}},
				Upstreams: []tenants.Upstream{{Name: "svc", Endpoints: []tenants.Endpoint{{Address: "10.0.0.1", Port: 8080}}}}},
		}
		v.edit(&raw.Spec)
		cat := tenants.NewCatalog(tenants.Input{Revision: int64(i + 1), Tiers: []*tenants.Tier{plain}, Tenants: []*tenants.Tenant{raw}, SharedServices: shared}, nil)
		tt, _ := cat.Tenant("tenant-a")
		p, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tt, RoleEdge)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		res, _, err := Assemble(cat, Node{Role: RoleEdge}, map[string]*TenantResources{"tenant-a": p})
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		out := slices.DeleteFunc(slices.Clone(res.Clusters), func(r types.Resource) bool {
			return !strings.Contains(resourceName(r), ".shared.")
		})
		versions = append(versions, version{v.name, p, append(out, res.Routes...)})
		if got := SameEntitlements(versions[0].part, p); got == v.relevant && v.name != "features reordered" {
			t.Errorf("%s: SameEntitlements with the base is %v", v.name, got)
		}
	}
	for _, a := range versions {
		for _, b := range versions {
			same := SameEntitlements(a.part, b.part) && SameAggregateInputs(a.part, b.part)
			if same && !slices.EqualFunc(a.shared, b.shared, func(x, y types.Resource) bool { return proto.Equal(x, y) }) {
				t.Errorf("%s and %s: same inputs, but their alias clusters or edge-routes differ", a.name, b.name)
			}
		}
	}
	part := func(name string) *TenantResources {
		i := slices.IndexFunc(versions, func(v version) bool { return v.name == name })
		return versions[i].part
	}
	// Only the set of features counts, not their order.
	if !SameEntitlements(part("labs feature"), part("features reordered")) {
		t.Error("features in another order (and repeated) are not the same entitlements")
	}
	// The mount route names the tenant's local limit, not only its bucket.
	if SameEntitlements(part("local limit"), part("local limit rate")) {
		t.Error("two local limits of one bucket are the same entitlements")
	}
	if SameEntitlements(&TenantResources{}, &TenantResources{}) {
		t.Error("parts not made by TranslateTenant compare equal")
	}
}

func resourceName(r types.Resource) string {
	if n, ok := r.(named); ok {
		return n.GetName()
	}
	return ""
}
