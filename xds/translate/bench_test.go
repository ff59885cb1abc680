package translate

import (
	"fmt"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// benchTenant is a typical tenant: a host and path mount, 3 routes (one
// body-validated, one with its own local limit), 2 upstreams by IP.
func benchTenant(i int) *tenants.Tenant {
	id := fmt.Sprintf("tenant-%05d", i)
	ip := func(n int) string { return fmt.Sprintf("10.%d.%d.%d", i/250%250, i%250, n) }
	return &tenants.Tenant{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
		Metadata: tenants.ObjectMeta{Name: id},
		Spec: tenants.TenantSpec{
			Tier:       []string{"free", "standard", "enterprise"}[i%3],
			Hosts:      []string{id + ".api.example.com"},
			PathPrefix: true,
			Routes: []tenants.Route{
				{Name: "executive", Match: tenants.RouteMatch{PathPrefix: "/api/executive/", Methods: []string{"GET", "POST"}}, Upstream: "executive",
					RequestValidation: &tenants.RequestValidation{BodySchema: []byte(`{"type":"object"}`)},
					ResponseHeaders:   &tenants.HeaderMutation{Set: map[string]string{"X-Tenant": id}}},
				{Name: "reports", Match: tenants.RouteMatch{PathPrefix: "/api/reports/", Methods: []string{"GET"}}, Upstream: "analytics",
					Retries:   &tenants.Retries{Attempts: 2, On: []string{"5xx"}},
					RateLimit: &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: 10, Per: tenants.UnitSecond}}},
				{Name: "health", Match: tenants.RouteMatch{Path: "/health"}, Upstream: "executive"},
			},
			Upstreams: []tenants.Upstream{
				{Name: "executive", Endpoints: []tenants.Endpoint{{Address: ip(1), Port: 8080}, {Address: ip(2), Port: 8080}},
					HealthCheck: &tenants.HealthCheck{HTTP: &tenants.HTTPHealthCheck{Path: "/healthz"}}},
				{Name: "analytics", Endpoints: []tenants.Endpoint{{Address: ip(3), Port: 8083}}, LBPolicy: tenants.LBLeastRequest},
			},
		},
	}
}

func benchCatalog(n int) *tenants.Catalog {
	in := tenants.Input{Revision: 1}
	for i := 0; i < n; i++ {
		in.Tenants = append(in.Tenants, benchTenant(i))
	}
	return tenants.NewCatalog(in, nil)
}

// BenchmarkTranslate is a full edge translation of 10,000 tenants
// (3 routes, 2 upstreams each): what a cold start or a MeshConfig change
// costs.
func BenchmarkTranslate(b *testing.B) {
	cat := benchCatalog(10000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, terrs, err := Translate(cat, Node{Role: RoleEdge})
		if err != nil || len(terrs) > 0 {
			b.Fatal(err, terrs)
		}
		if len(res.Clusters) != 2*10000+2 {
			b.Fatalf("%d clusters", len(res.Clusters))
		}
	}
}

// BenchmarkTranslateTenant is one tenant's translation: the per-change
// cost when the xds layer reuses the other tenants' parts.
func BenchmarkTranslateTenant(b *testing.B) {
	cat := benchCatalog(1)
	t := cat.Tenants()[0]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), t, RoleEdge); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssemble is the edge assembly of 10,000 cached tenant parts:
// the rest of a one-tenant change.
func BenchmarkAssemble(b *testing.B) {
	cat := benchCatalog(10000)
	parts := map[string]*TenantResources{}
	for _, t := range cat.Tenants() {
		p, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), t, RoleEdge)
		if err != nil {
			b.Fatal(err)
		}
		parts[t.ID()] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Assemble(cat, Node{Role: RoleEdge}, parts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate is the publish gate over a full 10,000-tenant edge
// set (validate.Check, the RateLimitConfig rules and Consistent): what
// Translate's callers pay when they check a whole set at once (golden
// tests, xds dump); serve's per-change path checks only what changed.
func BenchmarkValidate(b *testing.B) {
	res, terrs, err := Translate(benchCatalog(10000), Node{Role: RoleEdge})
	if err != nil || len(terrs) > 0 {
		b.Fatal(err, terrs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Validate(res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGateTenant is the per-resource gate (validateParts and the
// edge virtual host's filter check) on one tenant's parts: the share of
// BenchmarkTranslateTenant the gate takes.
func BenchmarkGateTenant(b *testing.B) {
	cat := benchCatalog(1)
	p, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), cat.Tenants()[0], RoleEdge)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		edge, err := edgeFilters(cat.Mesh())
		if err != nil {
			b.Fatal(err)
		}
		if err := validateParts(p, edge); err != nil {
			b.Fatal(err)
		}
	}
}
