package xds

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// benchFleet is n tenants of 3 routes and 2 upstreams, as in the scale
// benchmark of integration/.
func benchFleet(n int) []*tenants.Tenant {
	out := make([]*tenants.Tenant, n)
	for i := range out {
		out[i] = benchTenant(i, 8080, "15s", int64(i+1))
	}
	return out
}

func benchTenant(i, port int, timeout string, rev int64) *tenants.Tenant {
	id := fmt.Sprintf("t%05d", i)
	up := func(name string, p int) tenants.Upstream {
		return tenants.Upstream{Name: name, Endpoints: []tenants.Endpoint{{Address: "10.0." + strconv.Itoa(i%250) + ".1", Port: p}}}
	}
	return &tenants.Tenant{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
		Metadata: tenants.ObjectMeta{Name: id, ResourceVersion: strconv.FormatInt(rev, 10)},
		Spec: tenants.TenantSpec{
			Tier: "standard", Hosts: []string{id + ".api.example.com"}, PathPrefix: true,
			Routes: []tenants.Route{
				{Name: "orders", Match: tenants.RouteMatch{PathPrefix: "/orders/"}, Upstream: "api", Timeout: tenants.Duration(timeout)},
				{Name: "users", Match: tenants.RouteMatch{PathPrefix: "/users/"}, Upstream: "api"},
				{Name: "reports", Match: tenants.RouteMatch{PathPrefix: "/reports/"}, Upstream: "reports"},
			},
			Upstreams: []tenants.Upstream{up("api", port), up("reports", 9000)},
		},
	}
}

// BenchmarkUpdateEndpointChange10k: one tenant's endpoint changes among
// 10,000; the cost from a new Catalog to updated caches (no clients).
//
//	go test -run='^$' -bench=UpdateEndpointChange -benchtime=50x ./xds/
func BenchmarkUpdateEndpointChange10k(b *testing.B) {
	benchUpdate(b, func(i int) *tenants.Tenant { return benchTenant(i%10000, 9000+i%500, "15s", int64(20000+i)) })
}

// BenchmarkUpdateRouteChange10k: one tenant's route timeout changes; only
// that tenant's virtual host (VHDS) is translated and published.
func BenchmarkUpdateRouteChange10k(b *testing.B) {
	benchUpdate(b, func(i int) *tenants.Tenant {
		return benchTenant(i%10000, 8080, strconv.Itoa(16+i%100)+"s", int64(20000+i))
	})
}

// BenchmarkUpdateTenantAdded10k: a tenant joins 10,000; the shared
// resources (edge-routes, RateLimitConfig) are re-assembled and compared.
func BenchmarkUpdateTenantAdded10k(b *testing.B) {
	s, fleet, cat := benchServer(b)
	for i := 0; i < b.N; i++ {
		fleet = append(fleet[:len(fleet):len(fleet)], benchTenant(10000+i, 8080, "15s", int64(20000+i)))
		cat = tenants.NewCatalog(tenants.Input{Revision: int64(20000 + i), Tenants: fleet}, cat)
		s.Update(cat)
	}
}

// benchServer is a Server holding 10,000 tenants, the timer reset.
func benchServer(b *testing.B) (*Server, []*tenants.Tenant, *tenants.Catalog) {
	fleet := benchFleet(10000)
	s := New(Options{})
	cat := tenants.NewCatalog(tenants.Input{Revision: 10001, Tenants: fleet}, nil)
	s.Update(cat)
	b.ResetTimer()
	return s, fleet, cat
}

func benchUpdate(b *testing.B, change func(i int) *tenants.Tenant) {
	s, fleet, cat := benchServer(b)
	for i := 0; i < b.N; i++ {
		t := change(i)
		idx := i % 10000
		next := make([]*tenants.Tenant, len(fleet))
		copy(next, fleet)
		next[idx] = t
		fleet = next
		cat = tenants.NewCatalog(tenants.Input{Revision: int64(20000 + i), Tenants: fleet}, cat)
		s.Update(cat)
	}
}
