package identity

import (
	"errors"
	"testing"
)

func TestSchemeRoundTrips(t *testing.T) {
	for uri, want := range map[string]ID{
		"spiffe://tenantmesh.local/edge/edge-1":                        Edge("tenantmesh.local", "edge-1"),
		"spiffe://example.org/tenant/tenant-a/service/executive":       Service("example.org", "tenant-a", "executive"),
		"spiffe://tenantmesh.local/grpc/grpc-client-1":                 GRPC("tenantmesh.local", "grpc-client-1"),
		"spiffe://tenantmesh.local/ratelimit/ratelimit":                Ratelimit("tenantmesh.local", "ratelimit"),
		"spiffe://tenantmesh.local/controlplane":                       ControlPlane("tenantmesh.local"),
		"spiffe://prod_1.example-corp.com/tenant/a1/service/Orders.v2": Service("prod_1.example-corp.com", "a1", "Orders.v2"),
	} {
		got, err := ParseSPIFFE(uri)
		if err != nil {
			t.Errorf("ParseSPIFFE(%q): %v", uri, err)
			continue
		}
		if got != want {
			t.Errorf("ParseSPIFFE(%q) = %+v, want %+v", uri, got, want)
		}
		if s := want.String(); s != uri {
			t.Errorf("%+v formats as %q, want %q", want, s, uri)
		}
		u, err := want.URI()
		if err != nil || u.String() != uri {
			t.Errorf("%+v URI() = %v, %v; want %q", want, u, err, uri)
		}
	}
}

func TestParseSPIFFERefuses(t *testing.T) {
	for _, uri := range []string{
		"",
		"https://tenantmesh.local/edge/e",                // another scheme
		"spiffe://tenantmesh.local",                      // the trust domain itself (a CA's ID, not a node's)
		"spiffe://tenantmesh.local/",                     // empty path
		"spiffe://tenantmesh.local/edge",                 // no name
		"spiffe://tenantmesh.local/edge/",                // empty name
		"spiffe://tenantmesh.local/edge/a/b",             // one segment too many
		"spiffe://tenantmesh.local/sidecar/a",            // not a kind of the scheme
		"spiffe://tenantmesh.local/tenant/a",             // service missing
		"spiffe://tenantmesh.local/tenant/a/svc/b",       // wrong keyword
		"spiffe://tenantmesh.local/tenant/A_b/service/s", // tenant not a DNS label
		"spiffe://tenantmesh.local/tenant/a/service/..",  // dot segment
		"spiffe://tenantmesh.local/tenant/a/service/s/x", // trailing segment
		"spiffe://tenantmesh.local/controlplane/x",
		"spiffe://TenantMesh.local/edge/e",     // trust domain is lowercase
		"spiffe://tenantmesh.local:443/edge/e", // port
		"spiffe://u@tenantmesh.local/edge/e",   // user
		"spiffe://tenantmesh.local/edge/e?x=1",
		"spiffe://tenantmesh.local/edge/e#f",
		"spiffe://tenantmesh.local/edge/e%2Fx", // percent-encoding
		"spiffe:///edge/e",                     // no trust domain
	} {
		if id, err := ParseSPIFFE(uri); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseSPIFFE(%q) = %+v, %v; want ErrInvalidID", uri, id, err)
		}
	}
}

func TestValidateRefusesMixedFields(t *testing.T) {
	for name, id := range map[string]ID{
		"edge with tenant":     {TrustDomain: "td", Kind: KindEdge, Name: "e", Tenant: "a"},
		"service with name":    {TrustDomain: "td", Kind: KindService, Tenant: "a", Service: "s", Name: "n"},
		"controlplane named":   {TrustDomain: "td", Kind: KindControlPlane, Name: "x"},
		"unknown kind":         {TrustDomain: "td", Kind: "gateway", Name: "x"},
		"empty trust domain":   Edge("", "e"),
		"service without name": Service("td", "a", ""),
	} {
		if err := id.Validate(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("%s: Validate = %v, want ErrInvalidID", name, err)
		}
		if _, err := id.URI(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("%s: URI err = %v, want ErrInvalidID", name, err)
		}
	}
}
