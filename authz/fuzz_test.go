package authz

import (
	"context"
	"log/slog"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
)

// FuzzCheck feeds arbitrary request attributes to Check. Whatever comes
// in, Check must answer with a CheckResponse (no error, no panic), and an
// allow must be for the route's own tenant, matching any x-tenant-id sent.
// Committed seeds live in testdata/fuzz/FuzzCheck; valid credentials are
// added here because their keys are generated per run.
func FuzzCheck(f *testing.F) {
	w := newWorld(f)
	s, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	s.Update(w.cat)

	tokA := w.tokenA(claimsA())
	tokB := sign(f, jwt.SigningMethodRS256, "b1", w.k.rsaB, jwt.MapClaims{"iss": issB, "org": "tenant-b", "scope": "admin", "exp": 4102444800})
	f.Add("Bearer "+tokA, "", "", "tenant-a", "orders", "GET", "")
	f.Add("Bearer "+tokA, "", "tenant-a", "tenant-a", "executive", "POST", `{"action":"a","parameters":{}}`)
	f.Add("Bearer "+tokB, "", "tenant-b", "tenant-b", "executive", "PUT", `{"action":"a","parameters":[]}`)
	f.Add("", w.apiKey["a"], "", "tenant-a", "analytics", "GET", "")
	f.Add("", w.apiKey["b"], "tenant-a", "tenant-b", "orders", "POST", "{")
	f.Add("Bearer "+tokA, w.apiKey["b"], "", "tenant-b", "orders", "GET", "")

	f.Fuzz(func(t *testing.T, authorization, apiKey, tenantHdr, ctxTenant, route, method, body string) {
		h := map[string]string{}
		if authorization != "" {
			h["authorization"] = authorization
		}
		if apiKey != "" {
			h["x-api-key"] = apiKey
		}
		if tenantHdr != "" {
			h["x-tenant-id"] = tenantHdr
		}
		req := creq{tenant: ctxTenant, route: route, method: method, body: body, headers: h}.proto()
		resp, err := s.Check(context.Background(), req)
		if err != nil || resp == nil {
			t.Fatalf("Check: %v, %v", resp, err)
		}
		if resp.GetStatus().GetCode() != int32(codes.OK) {
			if resp.GetDeniedResponse() == nil {
				t.Fatal("denial without denied_response")
			}
			return
		}
		hs := resp.GetOkResponse().GetHeaders()
		got, _ := headerValue(hs, HeaderTenantID)
		if got == "" || got != ctxTenant {
			t.Fatalf("allowed tenant %q on a route of %q", got, ctxTenant)
		}
		if tenantHdr != "" && tenantHdr != got {
			t.Fatalf("allowed tenant %q with x-tenant-id %q", got, tenantHdr)
		}
		if ctx, _ := headerValue(hs, HeaderTenantContext); ctx == "" {
			t.Fatal("allow without x-tenant-context")
		}
	})
}
