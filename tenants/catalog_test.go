package tenants

import (
	"reflect"
	"strings"
	"testing"
)

func tenant(id, rev, tier string, hosts ...string) *Tenant {
	return &Tenant{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindTenant},
		Metadata: ObjectMeta{Name: id, ResourceVersion: rev},
		Spec:     TenantSpec{Tier: tier, Hosts: hosts},
	}
}

func withIssuer(t *Tenant, iss string) *Tenant {
	t.Spec.Auth.JWT = append(t.Spec.Auth.JWT, JWTIssuer{Issuer: iss, JWKSURI: iss + "/jwks"})
	return t
}

func TestCatalogLookups(t *testing.T) {
	a := withIssuer(tenant("a", "3", "enterprise", "a.example.com", "api.a.example.com"), "https://idp.a")
	b := withIssuer(tenant("b", "4", "", "b.example.com"), "https://idp.shared")
	c := withIssuer(tenant("c", "5", "free"), "https://idp.shared")
	b.Spec.Auth.JWT[0].Shared, c.Spec.Auth.JWT[0].Shared = true, true
	key := &APIKey{ID: "0123456789abcdef01", Tenant: "a", Hash: HashAPIKeySecret("s")}
	mesh := &MeshConfig{Metadata: ObjectMeta{Name: "default"}, Spec: MeshConfigSpec{
		JWT: []JWTIssuer{{Issuer: "https://login.platform", JWKSURI: "https://login.platform/jwks"}},
	}}
	cat := NewCatalog(Input{Revision: 42, Mesh: mesh, Tenants: []*Tenant{c, a, b}, APIKeys: []*APIKey{key}}, nil)

	if cat.Revision() != 42 || cat.Len() != 3 || !reflect.DeepEqual(cat.TenantIDs(), []string{"a", "b", "c"}) {
		t.Fatalf("revision %d ids %v", cat.Revision(), cat.TenantIDs())
	}
	if ts := cat.Tenants(); ts[0].ID() != "a" || ts[2].ID() != "c" {
		t.Errorf("Tenants() not sorted by id")
	}
	got, ok := cat.Tenant("b")
	if !ok || got.Spec.Tier != "standard" || got.Spec.MaxConcurrentRequests != 200 {
		t.Errorf("tenant b must be defaulted with the standard tier: %+v", got)
	}
	if _, ok := cat.Tenant("zz"); ok {
		t.Error("unknown tenant found")
	}

	for host, want := range map[string]string{
		"a.example.com":          "a",
		"A.Example.COM":          "a", // Host headers are case-insensitive
		"api.a.example.com:8443": "a", // and carry ports
		"b.example.com:80":       "b",
	} {
		if tn, ok := cat.TenantByHost(host); !ok || tn.ID() != want {
			t.Errorf("TenantByHost(%q) = %v, %v; want %s", host, tn, ok, want)
		}
	}
	for _, host := range []string{"c.example.com", "example.com", "", "[::1]:80"} {
		if tn, ok := cat.TenantByHost(host); ok {
			t.Errorf("TenantByHost(%q) = %s, want none", host, tn.ID())
		}
	}

	if got := cat.TenantsByIssuer("https://idp.a"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("issuer idp.a: %v", got)
	}
	// A shared issuer names no tenant by itself, however many share it.
	if got := cat.TenantsByIssuer("https://idp.shared"); got != nil {
		t.Errorf("issuer idp.shared: %v", got)
	}
	if got := cat.sharedIssuers["https://idp.shared"]; !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("issuer idp.shared is shared by %v, want b and c", got)
	}
	if got := cat.TenantsByIssuer("https://login.platform"); got != nil {
		t.Errorf("platform issuers are not tenant issuers: %v", got)
	}
	if iss, ok := cat.PlatformIssuer("https://login.platform"); !ok || iss.TenantClaim != DefaultTenantClaim {
		t.Errorf("platform issuer: %+v %v", iss, ok)
	}
	if _, ok := cat.PlatformIssuer("https://idp.a"); ok {
		t.Error("a tenant issuer is not a platform issuer")
	}
	if k, ok := cat.APIKey(key.ID); !ok || k != key {
		t.Error("api key not indexed by id")
	}
	if cat.Mesh().Spec.EdgePort != DefaultEdgePort {
		t.Error("mesh not defaulted")
	}
	if tier, ok := cat.Tier("free"); !ok || tier.Metadata.Name != "free" || len(cat.Tiers()) != 3 {
		t.Errorf("tiers: %v", cat.Tiers())
	}
}

// A host already serving one tenant cannot be taken over by a tenant
// stored later, whatever the order of the input.
func TestCatalogHostConflictOlderTenantWins(t *testing.T) {
	older := tenant("old", "10", "", "shared.example.com")
	newer := tenant("new", "20", "", "other.example.com", "SHARED.example.com")
	for _, order := range [][]*Tenant{{older, newer}, {newer, older}} {
		cat := NewCatalog(Input{Tenants: order}, nil)
		if tn, ok := cat.TenantByHost("shared.example.com"); !ok || tn.ID() != "old" {
			t.Fatalf("host went to %v", tn)
		}
		if _, ok := cat.Tenant("new"); ok {
			t.Error("the newer tenant must be left out entirely")
		}
		if _, ok := cat.TenantByHost("other.example.com"); ok {
			t.Error("a rejected tenant must not keep its other hosts")
		}
		err := cat.Rejected()["new"]
		if err == nil || !strings.Contains(err.Error(), `already belongs to tenant "old"`) {
			t.Errorf("Rejected()[new] = %v", err)
		}
		if _, bad := cat.Rejected()["old"]; bad || cat.Len() != 1 {
			t.Errorf("old must be served: %v", cat.Rejected())
		}
	}
}

func TestCatalogRejectsUnknownTier(t *testing.T) {
	cat := NewCatalog(Input{Tenants: []*Tenant{tenant("a", "1", "gold"), tenant("b", "2", "free")}}, nil)
	if _, ok := cat.Tenant("a"); ok {
		t.Error("tenant with unknown tier served")
	}
	if err := cat.Rejected()["a"]; err == nil || !strings.Contains(err.Error(), `unknown tier "gold"`) {
		t.Errorf("Rejected()[a] = %v", err)
	}
	if _, ok := cat.Tenant("b"); !ok {
		t.Error("a bad tenant must not hurt another tenant")
	}

	gold := &Tier{Metadata: ObjectMeta{Name: "gold", ResourceVersion: "7"}, Spec: TierSpec{MaxConcurrentRequests: 9}}
	cat = NewCatalog(Input{Tiers: []*Tier{gold}, Tenants: []*Tenant{tenant("a", "1", "gold")}}, nil)
	if tn, ok := cat.Tenant("a"); !ok || tn.Spec.MaxConcurrentRequests != 9 {
		t.Errorf("tenant of a stored tier: %+v", tn)
	}
}

func TestCatalogTierObjectOverridesBuiltin(t *testing.T) {
	free := &Tier{Metadata: ObjectMeta{Name: "free"}, Spec: TierSpec{MaxConcurrentRequests: 3}}
	cat := NewCatalog(Input{Tiers: []*Tier{free}, Tenants: []*Tenant{tenant("a", "1", "free")}}, nil)
	if tn, _ := cat.Tenant("a"); tn.Spec.MaxConcurrentRequests != 3 {
		t.Errorf("Tier object must replace the built-in tier: %d", tn.Spec.MaxConcurrentRequests)
	}
}

// Incremental translation depends on this: a tenant whose stored value did
// not change keeps its defaulted object, so everything derived from it can
// be reused; a changed tier or MeshConfig rebuilds every tenant.
func TestCatalogSharesUnchangedTenants(t *testing.T) {
	a, b := tenant("a", "1", "", "a.example.com"), tenant("b", "2", "", "b.example.com")
	mesh := &MeshConfig{Metadata: ObjectMeta{Name: "default", ResourceVersion: "1"}}
	c1 := NewCatalog(Input{Revision: 2, Mesh: mesh, Tenants: []*Tenant{a, b}}, nil)

	b2 := tenant("b", "3", "", "b.example.com", "b2.example.com")
	c2 := NewCatalog(Input{Revision: 3, Mesh: mesh, Tenants: []*Tenant{a, b2}}, c1)
	ta1, _ := c1.Tenant("a")
	ta2, _ := c2.Tenant("a")
	if ta1 != ta2 || !c2.Unchanged(c1, "a") {
		t.Error("unchanged tenant a must keep its pointer")
	}
	if c2.Unchanged(c1, "b") {
		t.Error("changed tenant b reported unchanged")
	}
	if _, ok := c2.TenantByHost("b2.example.com"); !ok {
		t.Error("changed tenant b not rebuilt")
	}
	if c2.Unchanged(nil, "a") || c2.Unchanged(c1, "missing") {
		t.Error("Unchanged without a previous tenant must be false")
	}

	// A new Tier object (even with the same content) may change defaults.
	std := &Tier{Metadata: ObjectMeta{Name: "standard", ResourceVersion: "4"}, Spec: TierSpec{MaxConcurrentRequests: 5}}
	c3 := NewCatalog(Input{Revision: 4, Mesh: mesh, Tiers: []*Tier{std}, Tenants: []*Tenant{a, b2}}, c2)
	if c3.Unchanged(c2, "a") {
		t.Error("a tier change must rebuild tenants")
	}
	if ta3, _ := c3.Tenant("a"); ta3.Spec.MaxConcurrentRequests != 5 {
		t.Errorf("rebuilt tenant must use the new tier: %d", ta3.Spec.MaxConcurrentRequests)
	}
	c4 := NewCatalog(Input{Revision: 5, Mesh: mesh, Tiers: []*Tier{std}, Tenants: []*Tenant{a, b2}}, c3)
	if !c4.Unchanged(c3, "a") {
		t.Error("same tier objects: tenants must be shared again")
	}

	mesh2 := &MeshConfig{Metadata: ObjectMeta{Name: "default", ResourceVersion: "6"}, Spec: MeshConfigSpec{EdgePort: 8080}}
	c5 := NewCatalog(Input{Revision: 6, Mesh: mesh2, Tiers: []*Tier{std}, Tenants: []*Tenant{a, b2}}, c4)
	if c5.Unchanged(c4, "a") || c5.Mesh().Spec.EdgePort != 8080 {
		t.Error("a MeshConfig change must rebuild tenants")
	}
}
