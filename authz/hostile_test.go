package authz

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantmesh/tenantmesh/authz/jwks"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// TestHostile is the list of hostile requests: every case over real gRPC on
// loopback, every one denied with the right status and reason.
func TestHostile(t *testing.T) {
	w := newWorld(t)
	k := w.k
	s, cl := newServer(t, w, Options{})
	_ = s

	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &k.rsaA.PublicKey)})
	routeA := func(h map[string]string) creq { return creq{tenant: "tenant-a", route: "orders", headers: h} }
	routeB := func(h map[string]string) creq { return creq{tenant: "tenant-b", route: "orders", headers: h} }
	with := func(c jwt.MapClaims, mod func(jwt.MapClaims)) jwt.MapClaims { mod(c); return c }
	now := time.Now()

	cases := []struct {
		name   string
		req    creq
		status int
		reason Reason
	}{
		{"no credentials", routeA(nil), 401, ReasonMissingCredentials},
		{"basic auth is no credential", routeA(map[string]string{"authorization": "Basic YTpi"}), 401, ReasonMissingCredentials},
		{"alg none", routeA(bearer(sign(t, jwt.SigningMethodNone, "a1", jwt.UnsafeAllowNoneSignatureType, claimsA()))), 401, ReasonAlgNotAllowed},
		{"HS256 with the RSA public key as secret", routeA(bearer(sign(t, jwt.SigningMethodHS256, "a1", rsaPubPEM, claimsA()))), 401, ReasonAlgNotAllowed},
		{"expired", routeA(bearer(w.tokenA(with(claimsA(), func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })))), 401, ReasonTokenExpired},
		{"nbf in the future", routeA(bearer(w.tokenA(with(claimsA(), func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() })))), 401, ReasonTokenNotYetValid},
		{"missing exp", routeA(bearer(w.tokenA(with(claimsA(), func(c jwt.MapClaims) { delete(c, "exp") })))), 401, ReasonInvalidToken},
		{"wrong iss", routeA(bearer(w.tokenA(with(claimsA(), func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })))), 401, ReasonUntrustedIssuer},
		{"wrong aud", routeA(bearer(w.tokenA(with(claimsA(), func(c jwt.MapClaims) { c["aud"] = "other-api" })))), 401, ReasonInvalidAudience},
		{"unknown kid", routeA(bearer(sign(t, jwt.SigningMethodRS256, "nope", k.rsaA, claimsA()))), 401, ReasonUnknownKey},
		{"known kid, wrong key", routeA(bearer(sign(t, jwt.SigningMethodRS256, "a1", k.rsaB, claimsA()))), 401, ReasonInvalidToken},
		{"tenant-b issuer claiming tenant-a, on a tenant-a route", routeA(bearer(sign(t, jwt.SigningMethodRS256, "b1", k.rsaB,
			jwt.MapClaims{"iss": issB, "org": "tenant-a", "exp": now.Add(time.Hour).Unix()}))), 403, ReasonIssuerTenantMismatch},
		{"tenant-b issuer claiming tenant-a, on a tenant-b route", routeB(bearer(sign(t, jwt.SigningMethodRS256, "b1", k.rsaB,
			jwt.MapClaims{"iss": issB, "org": "tenant-a", "exp": now.Add(time.Hour).Unix()}))), 403, ReasonIssuerTenantMismatch},
		{"tenant-a token on a tenant-b route (host form)", creq{tenant: "tenant-b", route: "orders", host: "tenant-b.api.example.com",
			path: "/api/orders/1", headers: bearer(w.tokenA(claimsA()))}, 403, ReasonCrossTenant},
		{"tenant-a token on a tenant-b route (path form)", creq{tenant: "tenant-b", route: "orders", host: "api.example.com",
			path: "/tenants/tenant-b/api/orders/1", headers: bearer(w.tokenA(claimsA()))}, 403, ReasonCrossTenant},
		{"platform token for tenant-a on a tenant-b route", routeB(bearer(sign(t, jwt.SigningMethodES256, "p-ec", k.ecPlat,
			jwt.MapClaims{"iss": issPlatform, "aud": audPlatform, "tenant_id": "tenant-a", "exp": now.Add(time.Hour).Unix()}))), 403, ReasonCrossTenant},
		{"platform token without tenant claim", routeA(bearer(sign(t, jwt.SigningMethodES256, "p-ec", k.ecPlat,
			jwt.MapClaims{"iss": issPlatform, "aud": audPlatform, "exp": now.Add(time.Hour).Unix()}))), 401, ReasonMissingTenantClaim},
		{"X-Tenant-ID tenant-b with a tenant-a token", routeA(map[string]string{"authorization": "Bearer " + w.tokenA(claimsA()),
			"x-tenant-id": "tenant-b"}), 403, ReasonTenantHeaderMismatch},
		{"suspended tenant", creq{tenant: "tenant-s", route: "orders", headers: map[string]string{"x-api-key": w.apiKey["s"]}}, 403, ReasonTenantSuspended},
		{"revoked api key", routeA(map[string]string{"x-api-key": w.apiKey["revoked"]}), 401, ReasonAPIKeyRevoked},
		{"expired api key", routeA(map[string]string{"x-api-key": w.apiKey["expired"]}), 401, ReasonAPIKeyExpired},
		{"api key with a wrong secret", routeA(map[string]string{"x-api-key": w.apiKey["a"][:len(w.apiKey["a"])-4] + "AAAA"}), 401, ReasonInvalidAPIKey},
		{"not an api key", routeA(map[string]string{"x-api-key": "letmein"}), 401, ReasonInvalidAPIKey},
		{"api key of a tenant without api keys", creq{tenant: "tenant-nokeys", route: "orders", headers: map[string]string{"x-api-key": w.apiKey["nokeys"]}}, 401, ReasonAPIKeysDisabled},
		{"tenant-a key on a tenant-b route", routeB(map[string]string{"x-api-key": w.apiKey["a"]}), 403, ReasonCrossTenant},
		{"Bearer and 10k dots", routeA(bearer(strings.Repeat(".", 10000))), 401, ReasonInvalidToken},
		{"Bearer and three dots", routeA(bearer("...")), 401, ReasonInvalidToken},
		{"64 KiB of header junk", routeA(junkHeaders(64 << 10)), 401, ReasonMissingCredentials},
		{"64 KiB of junk as the token", routeA(bearer(strings.Repeat("x", 64<<10))), 401, ReasonInvalidToken},
		{"64 KiB of junk as the api key", routeA(map[string]string{"x-api-key": "tmk_" + strings.Repeat("A", 64<<10)}), 401, ReasonInvalidAPIKey},
		{"body failing the schema", creq{tenant: "tenant-a", route: "executive", method: "POST", body: `{"action":"x"}`,
			headers: bearer(w.tokenA(claimsA()))}, 400, ReasonBodyInvalid},
		{"body that is not JSON", creq{tenant: "tenant-a", route: "executive", method: "POST", body: `action=x&parameters=y`,
			headers: bearer(w.tokenA(claimsA()))}, 400, ReasonBodyNotJSON},
		{"POST without a body on a validated route", creq{tenant: "tenant-a", route: "executive", method: "POST",
			headers: bearer(w.tokenA(claimsA()))}, 400, ReasonBodyNotJSON},
		{"missing role", creq{tenant: "tenant-a", route: "executive", headers: bearer(w.tokenA(with(claimsA(), func(c jwt.MapClaims) { c["roles"] = []string{"guest"} })))}, 403, ReasonMissingRole},
		{"missing feature", creq{tenant: "tenant-a", route: "models", headers: bearer(w.tokenA(claimsA()))}, 403, ReasonMissingFeature},
		{"no context extensions (not a tenant route)", creq{headers: bearer(w.tokenA(claimsA()))}, 403, ReasonNotTenantRoute},
		{"unknown route", creq{tenant: "tenant-a", route: "gone", headers: bearer(w.tokenA(claimsA()))}, 403, ReasonUnknownRoute},
		{"route of an unknown tenant", creq{tenant: "tenant-zz", route: "orders", headers: bearer(w.tokenA(claimsA()))}, 401, ReasonUnknownTenant},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantDenied(t, check(t, cl, tc.req), tc.status, tc.reason)
		})
	}
}

func unsignedWithKid(t *testing.T, kid string, c jwt.MapClaims) string {
	t.Helper()
	h, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b64u(h) + "." + b64u(p) + "." + b64u(make([]byte, 256))
}

func mustPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func junkHeaders(total int) map[string]string {
	h := map[string]string{}
	for i := 0; total > 0; i++ {
		n := min(total, 4096)
		h["x-junk-"+strings.Repeat("z", i%7)+string(rune('a'+i%26))+strings.Repeat("q", i/26)] = strings.Repeat("\x7fé<>{}\u202e", n/10)
		total -= n
	}
	return h
}

// An issuer config that lists HS256 (or none) still never accepts it.
func TestSymmetricAlgorithmsNeverAccepted(t *testing.T) {
	w := newWorld(t)
	w.edit("tenant-b", func(s *tenants.TenantSpec) { s.Auth.JWT[0].Algorithms = []string{"HS256", "none", "RS256"} })
	w.build()
	_, cl := newServer(t, w, Options{})
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &w.k.rsaB.PublicKey)})
	c := jwt.MapClaims{"iss": issB, "org": "tenant-b", "exp": time.Now().Add(time.Hour).Unix()}
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, "b1", rsaPubPEM, c),
		sign(t, jwt.SigningMethodNone, "b1", jwt.UnsafeAllowNoneSignatureType, c),
	} {
		wantDenied(t, check(t, cl, creq{tenant: "tenant-b", route: "orders", headers: bearer(tok)}), 401, ReasonAlgNotAllowed)
	}
	// The RS256 token of the same issuer passes: the filter is not a blanket deny.
	wantAllowed(t, check(t, cl, creq{tenant: "tenant-b", route: "orders", headers: bearer(sign(t, jwt.SigningMethodRS256, "b1", w.k.rsaB, c))}), "tenant-b")
}

// A token whose alg is allowed but whose key type differs (ES256 header
// verified against an RSA JWK) is refused before any signature math.
func TestKeyTypeMustMatchAlg(t *testing.T) {
	w := newWorld(t)
	w.edit("tenant-b", func(s *tenants.TenantSpec) { s.Auth.JWT[0].Algorithms = []string{"RS256", "ES256"} })
	w.build()
	_, cl := newServer(t, w, Options{})
	tok := sign(t, jwt.SigningMethodES256, "b1", w.k.ecPlat, jwt.MapClaims{"iss": issB, "org": "tenant-b", "exp": time.Now().Add(time.Hour).Unix()})
	wantDenied(t, check(t, cl, creq{tenant: "tenant-b", route: "orders", headers: bearer(tok)}), 401, ReasonInvalidToken)
}

// A flood of 1,000 tokens with random kids costs the issuer a handful of
// fetches, and the service keeps answering valid tokens.
func TestUnknownKidFloodNoFetchStorm(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{JWKS: jwks.Options{RefetchInterval: time.Minute}})
	// Let the background fetch finish so the flood starts from a warm set.
	wantAllowed(t, check(t, cl, creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(claimsA()))}), "tenant-a")
	before := w.idpA.fetches.Load()

	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// The kid is looked up before any signature math, so a
			// well-formed token with a junk signature is what an attacker
			// would send (and costs the test no RSA signing).
			tok := unsignedWithKid(t, fmt.Sprintf("flood-%d", i), claimsA())
			resp, err := cl.Check(context.Background(), creq{tenant: "tenant-a", route: "orders", headers: bearer(tok)}.proto())
			if err != nil {
				t.Errorf("gRPC error: %v", err)
				return
			}
			if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != 401 {
				t.Errorf("status %d", got)
			}
		}()
	}
	wg.Wait()
	if n := w.idpA.fetches.Load() - before; n > 3 {
		t.Errorf("%d JWKS fetches during the flood; want at most a handful", n)
	}
	wantAllowed(t, check(t, cl, creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(claimsA()))}), "tenant-a")
	_ = s
}

// A deleted tenant: the catalog update removes it, and the verification
// cached a moment ago must not allow any more.
func TestDeletedTenantCachedDecisionDoesNotAllow(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	req := creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(claimsA()))}
	wantAllowed(t, check(t, cl, req), "tenant-a")
	wantAllowed(t, check(t, cl, req), "tenant-a")
	if s.cache.len() == 0 {
		t.Fatal("allow was not cached; the test would prove nothing")
	}
	delete(w.tenants, "tenant-a")
	s.Update(w.build())
	wantDenied(t, check(t, cl, req), 401, ReasonUnknownTenant)
}

// Client-sent x-tenant-id / x-tenant-context come out overwritten.
func TestForgedTenantHeadersOverwritten(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	forged := "eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiJ0ZW5hbnQtYiJ9."
	resp := check(t, cl, creq{tenant: "tenant-a", route: "orders", headers: map[string]string{
		"authorization": "Bearer " + w.tokenA(claimsA()), "x-tenant-id": "tenant-a",
		"x-tenant-context": forged, "x-tenant-tier": "enterprise-plus-forged",
	}})
	ctxTok := wantAllowed(t, resp, "tenant-a") // asserts append=false + OVERWRITE on every header
	if ctxTok == forged {
		t.Fatal("forged x-tenant-context passed through")
	}
	if tier, _ := headerValue(resp.GetOkResponse().GetHeaders(), HeaderTenantTier); tier != "enterprise" {
		t.Errorf("x-tenant-tier %q", tier)
	}
	if c := verifyContext(t, s, ctxTok); c["tenant_id"] != "tenant-a" {
		t.Errorf("context tenant %v", c["tenant_id"])
	}
}

// An unavailable issuer denies (issuer_unavailable) and that denial is not
// cached: once the issuer is back, the same token is allowed.
func TestIssuerUnavailableNotCached(t *testing.T) {
	w := newWorld(t)
	w.idpA.failing.Store(true)
	clk := newClock()
	_, cl := newServer(t, w, Options{Now: clk.Now, JWKS: jwks.Options{RefetchInterval: 10 * time.Second}})
	req := creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(claimsA()))}
	wantDenied(t, check(t, cl, req), 401, ReasonIssuerUnavailable)
	w.idpA.failing.Store(false)
	clk.Advance(11 * time.Second) // past the refetch window
	wantAllowed(t, check(t, cl, req), "tenant-a")
}
