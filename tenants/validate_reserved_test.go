package tenants

import (
	"strings"
	"testing"
)

const meshDoc = "apiVersion: tenantmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n  platformHosts: [api.example.com]\n  jwt: [{issuer: \"https://login.platform\", jwksUri: \"https://login.platform/jwks\"}]\n"

func issuerTenantDoc(id, iss string, shared bool) string {
	return doc("apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\nspec:\n  auth:\n    jwt: [{issuer: %q, jwksUri: \"https://idp/jwks\", shared: %t}]\n", id, iss, shared)
}

// causes lists "document path: cause" of every error.
func causes(list ErrorList) string {
	var out []string
	for _, e := range list {
		out = append(out, strings.Join([]string{e.Name, string(e.Path), e.Cause}, " "))
	}
	return strings.Join(out, "\n")
}

func TestValidateSetReservesPlatformNames(t *testing.T) {
	docs := decodeSet(t, "set.yaml", doc(meshDoc)+
		doc(tenantDoc, "a", "free", "a.example.com, api.example.com")+
		doc(tenantDoc, "b", "free", "\"*.example.com\"")+
		issuerTenantDoc("c", "https://login.platform", true)+
		issuerTenantDoc("d", "https://idp.d", false)+
		issuerTenantDoc("e", "https://idp.d", true)+
		issuerTenantDoc("f", "https://idp.f", true)+
		issuerTenantDoc("g", "https://idp.f", true))
	want := strings.Join([]string{
		`a spec.hosts[1] "api.example.com" is a platform host (MeshConfig spec.platformHosts)`,
		`b spec.hosts[0] "*.example.com" covers the platform host "api.example.com" (MeshConfig spec.platformHosts)`,
		`c spec.auth.jwt[0].issuer "https://login.platform" is a platform issuer (MeshConfig spec.jwt[0]), which is not shared: a tenant may list it only when both the MeshConfig's issuer and the tenant's set shared: true`,
		`e spec.auth.jwt[0].issuer issuer "https://idp.d" is also listed by tenant "d" (set.yaml document 5): two tenants may list one issuer only when both set shared: true`,
	}, "\n")
	if got := causes(errorList(t, ValidateDocuments(docs, nil))); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}

	// The stored MeshConfig counts when the set has none.
	stored := decodeSet(t, "mesh.yaml", meshDoc)[0].Object.(*MeshConfig)
	docs = decodeSet(t, "t.yaml", doc(tenantDoc, "a", "free", "api.example.com"))
	list := errorList(t, ValidateSet(docs, Stored{Mesh: stored}))
	if len(list) != 1 || list[0].Error() != `t.yaml (document 1): Tenant "a": spec.hosts[0]: "api.example.com" is a platform host (MeshConfig spec.platformHosts)` {
		t.Fatalf("got %v", list)
	}
	if err := ValidateSet(docs, Stored{}); err != nil {
		t.Fatalf("no MeshConfig, nothing reserved: %v", err)
	}
}

func TestValidatePlatformHosts(t *testing.T) {
	docs := decodeSet(t, "m.yaml", doc("apiVersion: tenantmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {platformHosts: [api.example.com, \"*.example.com\", API.example.com, api.example.com, \"api.example.com:443\"]}\n"))
	want := strings.Join([]string{
		`default spec.platformHosts[1] "*.example.com": platform hosts are exact names, without wildcards`,
		`default spec.platformHosts[2] "API.example.com" must be lower case ("api.example.com")`,
		`default spec.platformHosts[3] host "api.example.com" is listed twice`,
		`default spec.platformHosts[4] "api.example.com:443" must not carry a port: Envoy matches hosts with the port stripped`,
	}, "\n")
	if got := causes(errorList(t, ValidateDocuments(docs, nil))); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// What reaches the Catalog without apply's checks (written to etcd by
// hand, or put in conflict by a MeshConfig change) is rejected; older
// tenants win, the others are unaffected.
func TestCatalogRejectsReservedNames(t *testing.T) {
	mesh := &MeshConfig{Metadata: ObjectMeta{Name: MeshConfigName}, Spec: MeshConfigSpec{
		PlatformHosts: []string{"api.example.com"},
		JWT: []JWTIssuer{
			{Issuer: "https://login.platform", JWKSURI: "https://login.platform/jwks"},
			{Issuer: "https://shared.platform", JWKSURI: "https://shared.platform/jwks", Shared: true},
		},
	}}
	shared := func(tn *Tenant) *Tenant { tn.Spec.Auth.JWT[len(tn.Spec.Auth.JWT)-1].Shared = true; return tn }
	in := Input{Revision: 9, Mesh: mesh, Tenants: []*Tenant{
		tenant("host", "2", "free", "API.example.com"),
		withIssuer(tenant("platform", "3", "free"), "https://login.platform"),
		withIssuer(tenant("platform-unshared", "4", "free"), "https://shared.platform"),
		shared(withIssuer(tenant("platform-shared", "5", "free"), "https://shared.platform")),
		withIssuer(tenant("owner", "6", "free"), "https://idp.o"),
		shared(withIssuer(tenant("joiner", "7", "free"), "https://idp.o")),
		shared(withIssuer(tenant("sharer-1", "8", "free"), "https://idp.s")),
		shared(withIssuer(tenant("sharer-2", "9", "free"), "https://idp.s")),
		withIssuer(tenant("loner", "10", "free"), "https://idp.s"),
	}}
	cat := NewCatalog(in, nil)
	want := map[string]string{
		"host":              `spec.hosts[0]: "API.example.com" is a platform host (MeshConfig spec.platformHosts)`,
		"platform":          `spec.auth.jwt[0].issuer: "https://login.platform" is a platform issuer (MeshConfig spec.jwt[0]), which is not shared`,
		"platform-unshared": `spec.auth.jwt[0].issuer: "https://shared.platform" is a platform issuer (MeshConfig spec.jwt[1]): set shared: true to share it`,
		"joiner":            `spec.auth.jwt[0].issuer: issuer "https://idp.o" already belongs to tenant "owner", which does not share it`,
		"loner":             `spec.auth.jwt[0].issuer: issuer "https://idp.s" is shared by tenant(s) sharer-1, sharer-2: set shared: true to share it too`,
	}
	if len(cat.Rejected()) != len(want) {
		t.Errorf("rejected %v", cat.Rejected())
	}
	for id, w := range want {
		if err := cat.Rejected()[id]; err == nil || !strings.HasPrefix(err.Error(), w) {
			t.Errorf("%s: rejected for %v, want %q", id, err, w)
		}
	}
	if got := strings.Join(cat.TenantIDs(), " "); got != "owner platform-shared sharer-1 sharer-2" {
		t.Errorf("admitted %s", got)
	}
	if got := cat.TenantsByIssuer("https://idp.o"); len(got) != 1 || got[0] != "owner" {
		t.Errorf("idp.o held by %v, want owner", got)
	}
	for _, iss := range []string{"https://idp.s", "https://shared.platform"} {
		if got := cat.TenantsByIssuer(iss); got != nil {
			t.Errorf("%s is shared, yet names tenants %v", iss, got)
		}
	}
}
