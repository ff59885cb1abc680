package authz

import (
	"context"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// withShared adds shared services to the world's catalog and publishes it.
func withShared(w *world, s *Server, svcs ...*tenants.SharedService) {
	in := tenants.Input{Revision: w.rev + 1, Mesh: w.mesh, APIKeys: w.keys, SharedServices: svcs}
	for _, id := range []string{"tenant-a", "tenant-b", "tenant-s", "tenant-nokeys"} {
		in.Tenants = append(in.Tenants, w.tenants[id])
	}
	w.rev++
	w.cat = tenants.NewCatalog(in, w.cat)
	s.Update(w.cat)
}

func sharedSvc(name string, features ...string) *tenants.SharedService {
	return &tenants.SharedService{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
		Metadata: tenants.ObjectMeta{Name: name},
		Spec:     tenants.SharedServiceSpec{Endpoints: []tenants.Endpoint{{Address: "10.9.0.1", Port: 80}}, Features: features},
	}
}

func sharedCheck(t *testing.T, cl authv3.AuthorizationClient, name string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	resp, err := cl.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/shared/" + name + "/x", Headers: headers,
		}},
		ContextExtensions: map[string]string{ExtSharedService: name},
	}})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

// TestSharedServiceIdentifiesTenant: a shared service route names no
// tenant; the caller's tenant comes from whichever credential it sends,
// and the allow sets that tenant's headers (the edge routes on them).
func TestSharedServiceIdentifiesTenant(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	withShared(w, s, sharedSvc("geo"))

	ctxTok := wantAllowed(t, sharedCheck(t, cl, "geo", bearer(w.tokenA(claimsA()))), "tenant-a")
	if c := verifyContext(t, s, ctxTok); c["tenant_id"] != "tenant-a" || c["aud"] != "tenant-a" {
		t.Errorf("context claims %v", c)
	}
	wantAllowed(t, sharedCheck(t, cl, "geo", map[string]string{"x-api-key": w.apiKey["b"]}), "tenant-b")
	plat := sign(t, jwt.SigningMethodES256, "p-ec", w.k.ecPlat, jwt.MapClaims{"iss": issPlatform, "aud": audPlatform,
		"tenant_id": "tenant-b", "sub": "ops", "exp": time.Now().Add(time.Hour).Unix()})
	wantAllowed(t, sharedCheck(t, cl, "geo", bearer(plat)), "tenant-b")
	// The header is a hint only; it must agree with the credential.
	h := bearer(w.tokenA(claimsA()))
	h["x-tenant-id"] = "tenant-a"
	wantAllowed(t, sharedCheck(t, cl, "geo", h), "tenant-a")
}

func TestSharedServiceDenials(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	withShared(w, s, sharedSvc("geo"), sharedSvc("models", "custom_models"))

	// A forged x-tenant-id cannot borrow another tenant's entitlement or alias.
	h := bearer(w.tokenA(claimsA()))
	h["x-tenant-id"] = "tenant-b"
	wantDenied(t, sharedCheck(t, cl, "geo", h), 403, ReasonTenantHeaderMismatch)
	// Entitlement: models needs custom_models, tenant-a only has advanced_analytics.
	wantDenied(t, sharedCheck(t, cl, "models", bearer(w.tokenA(claimsA()))), 403, ReasonMissingFeature)
	// Suspended tenants are refused like on their own routes.
	wantDenied(t, sharedCheck(t, cl, "geo", map[string]string{"x-api-key": w.apiKey["s"]}), 403, ReasonTenantSuspended)
	wantDenied(t, sharedCheck(t, cl, "geo", nil), 401, ReasonMissingCredentials)
	wantDenied(t, sharedCheck(t, cl, "nope", bearer(w.tokenA(claimsA()))), 403, ReasonUnknownRoute)
	wantDenied(t, sharedCheck(t, cl, "geo", map[string]string{"x-api-key": w.apiKey["revoked"]}), 401, ReasonAPIKeyRevoked)

	// Granting the feature entitles the tenant.
	w.edit("tenant-a", func(s *tenants.TenantSpec) { s.Features = append(s.Features, "custom_models") })
	withShared(w, s, sharedSvc("geo"), sharedSvc("models", "custom_models"))
	wantAllowed(t, sharedCheck(t, cl, "models", bearer(w.tokenA(claimsA()))), "tenant-a")
}
