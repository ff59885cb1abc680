package authz

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tenantmesh/tenantmesh/tenants"
)

func TestAllowTenantIssuerJWT(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	resp := check(t, cl, creq{tenant: "tenant-a", route: "executive", method: "POST",
		body:    `{"action":"report","parameters":{}}`,
		headers: map[string]string{"authorization": "Bearer " + w.tokenA(claimsA()), "x-tenant-id": "tenant-a", "x-request-id": "r-1"}})
	ctxTok := wantAllowed(t, resp, "tenant-a")
	if tier := resp.GetDynamicMetadata().GetFields()["tier"].GetStringValue(); tier != "enterprise" {
		t.Errorf("metadata tier %q", tier)
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "x-request-id" {
			t.Error("x-request-id must be left to Envoy, not rewritten")
		}
	}
	c := verifyContext(t, s, ctxTok)
	if c["tenant_id"] != "tenant-a" || c["tier"] != "enterprise" || c["sub"] != "alice" || c["aud"] != "tenant-a" ||
		c["iss"] != ContextTokenIssuer || c["jti"] == "" {
		t.Errorf("context claims %v", c)
	}
	if !slices.Equal(toStrings(c["features"]), []string{"advanced_analytics"}) || !slices.Equal(toStrings(c["roles"]), []string{"user"}) {
		t.Errorf("features/roles %v %v", c["features"], c["roles"])
	}
	iat, exp := c["iat"].(float64), c["exp"].(float64)
	if exp-iat <= 0 || exp-iat > ContextTokenLifetime.Seconds() {
		t.Errorf("lifetime %v s", exp-iat)
	}
}

func TestAllowPlatformIssuer(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	for _, tc := range []struct {
		method jwt.SigningMethod
		kid    string
		key    any
	}{{jwt.SigningMethodES256, "p-ec", w.k.ecPlat}, {jwt.SigningMethodEdDSA, "p-ed", w.k.edPlat}} {
		tok := sign(t, tc.method, tc.kid, tc.key, jwt.MapClaims{"iss": issPlatform, "aud": []string{"x", audPlatform},
			"tenant_id": "tenant-b", "sub": "ops", "roles": "admin auditor", "exp": time.Now().Add(time.Hour).Unix()})
		ctxTok := wantAllowed(t, check(t, cl, creq{tenant: "tenant-b", route: "executive", headers: bearer(tok)}), "tenant-b")
		c := verifyContext(t, s, ctxTok)
		if !slices.Equal(toStrings(c["roles"]), []string{"admin", "auditor"}) || c["tier"] != "standard" {
			t.Errorf("%s: claims %v", tc.method.Alg(), c)
		}
	}
}

func TestAllowAPIKey(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	resp := check(t, cl, creq{tenant: "tenant-a", route: "orders", headers: map[string]string{"x-api-key": w.apiKey["a"]}})
	c := verifyContext(t, s, wantAllowed(t, resp, "tenant-a"))
	if c["tenant_id"] != "tenant-a" || c["sub"] == "" {
		t.Errorf("claims %v", c)
	}
	// An API key carries no roles: a route that requires one refuses it.
	wantDenied(t, check(t, cl, creq{tenant: "tenant-a", route: "executive", headers: map[string]string{"x-api-key": w.apiKey["a"]}}), 403, ReasonMissingRole)
}

func TestRawBodyAndGETOnValidatedRoute(t *testing.T) {
	w := newWorld(t)
	_, cl := newServer(t, w, Options{})
	tok := w.tokenA(claimsA())
	req := creq{tenant: "tenant-a", route: "executive", method: "POST", headers: bearer(tok)}.proto()
	req.Attributes.Request.Http.RawBody = []byte(`{"action":"a","parameters":[1]}`)
	resp, err := cl.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, resp, "tenant-a")
	req.Attributes.Request.Http.RawBody = []byte(`{"action":1}`)
	if resp, err = cl.Check(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, resp, 400, ReasonBodyInvalid)
	// A GET has no body to validate.
	wantAllowed(t, check(t, cl, creq{tenant: "tenant-a", route: "executive", headers: bearer(tok)}), "tenant-a")
}

func TestDenialLanguage(t *testing.T) {
	w := newWorld(t)
	_, cl := newServer(t, w, Options{})
	for tenant, want := range map[string]string{
		"tenant-a": messages["de"][ReasonMissingCredentials],
		"tenant-b": messages["fr"][ReasonMissingCredentials],
		"tenant-s": messages["en"][ReasonMissingCredentials],
		"nobody":   messages["en"][ReasonUnknownTenant],
	} {
		resp := check(t, cl, creq{tenant: tenant, route: "orders"})
		var b errorBody
		if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &b); err != nil {
			t.Fatal(err)
		}
		if b.Error.Message != want {
			t.Errorf("%s: message %q, want %q", tenant, b.Error.Message, want)
		}
	}
	// Every reason has a message in every language.
	for loc, m := range messages {
		for r := range messages["en"] {
			if m[r] == "" {
				t.Errorf("%s: no message for %s", loc, r)
			}
		}
	}
}

// The decision cache only caches the credential: a changed x-tenant-id or
// body is checked again on a hit.
func TestCacheDoesNotBypassPerRequestChecks(t *testing.T) {
	w := newWorld(t)
	s, cl := newServer(t, w, Options{})
	tok := w.tokenA(claimsA())
	ok := creq{tenant: "tenant-a", route: "executive", method: "POST", body: `{"action":"a","parameters":{}}`, headers: bearer(tok)}
	wantAllowed(t, check(t, cl, ok), "tenant-a")
	if s.cache.len() != 1 {
		t.Fatalf("cache has %d entries, want 1", s.cache.len())
	}
	bad := ok
	bad.body = `{"action":"a"}`
	wantDenied(t, check(t, cl, bad), 400, ReasonBodyInvalid)
	hdr := ok
	hdr.headers = map[string]string{"authorization": "Bearer " + tok, "x-tenant-id": "tenant-b"}
	wantDenied(t, check(t, cl, hdr), 403, ReasonTenantHeaderMismatch)
	// Suspending the tenant takes effect on the cached token at once.
	w.edit("tenant-a", func(s *tenants.TenantSpec) { s.Status = tenants.StatusSuspended })
	s.Update(w.build())
	wantDenied(t, check(t, cl, ok), 403, ReasonTenantSuspended)
}

// A cached entry reuses its x-tenant-context while it has > 30 s left.
func TestContextTokenReuse(t *testing.T) {
	w := newWorld(t)
	clk := newClock()
	s, cl := newServer(t, w, Options{Now: clk.Now})
	req := creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(claimsA()))}
	first := wantAllowed(t, check(t, cl, req), "tenant-a")
	if again := wantAllowed(t, check(t, cl, req), "tenant-a"); again != first {
		t.Error("context token re-minted although it had 60 s left")
	}
	clk.Advance(31 * time.Second)
	third := wantAllowed(t, check(t, cl, req), "tenant-a")
	if third == first {
		t.Error("context token with 29 s left handed out again")
	}
	_ = s
}

// The decision cache honours the token's exp.
func TestCacheEntryExpiresWithToken(t *testing.T) {
	w := newWorld(t)
	clk := newClock()
	_, cl := newServer(t, w, Options{Now: clk.Now})
	c := claimsA()
	c["exp"] = clk.Now().Add(time.Minute).Unix()
	req := creq{tenant: "tenant-a", route: "orders", headers: bearer(w.tokenA(c))}
	wantAllowed(t, check(t, cl, req), "tenant-a")
	clk.Advance(2 * time.Minute) // past exp + leeway
	wantDenied(t, check(t, cl, req), 401, ReasonTokenExpired)
}

func TestCacheBounded(t *testing.T) {
	c := newDecisionCache(32)
	now := time.Now()
	for i := range 1000 {
		var k cacheKey
		k.digest[0], k.digest[1], k.digest[2] = byte(i), byte(i>>8), 1
		c.put(k, &cacheEntry{expires: now.Add(time.Minute)})
	}
	if n := c.len(); n > 32 {
		t.Errorf("cache holds %d entries, cap 32", n)
	}
	if newDecisionCache(-1) != nil {
		t.Error("negative size must disable the cache")
	}
}

// Update rebuilds only changed tenants: unchanged entries (compiled
// schemas, parsers, key sources) are the same objects.
func TestUpdateReusesUnchangedTenants(t *testing.T) {
	w := newWorld(t)
	s, _ := newServer(t, w, Options{})
	before := s.idx.Load()
	w.edit("tenant-b", func(s *tenants.TenantSpec) { s.Features = append(s.Features, "custom_models") })
	s.Update(w.build())
	after := s.idx.Load()
	if after.tenants["tenant-a"] != before.tenants["tenant-a"] {
		t.Error("unchanged tenant-a was rebuilt")
	}
	if after.tenants["tenant-b"] == before.tenants["tenant-b"] {
		t.Error("changed tenant-b was not rebuilt")
	}
	if after.platform == nil || len(after.platform) != 1 {
		t.Errorf("platform issuers %v", after.platform)
	}
	if s.remotes[w.idpA.URL+"/jwks.json"] == nil {
		t.Error("remote key set of tenant-a dropped")
	}
	// Removing the tenant that uses the remote set stops its refresh.
	delete(w.tenants, "tenant-a")
	s.Update(w.build())
	if len(s.remotes) != 0 {
		t.Errorf("remotes %v kept after their issuer left", s.remotes)
	}
}

func TestReadyAndNotReady(t *testing.T) {
	s, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Ready() == nil {
		t.Error("ready before a catalog")
	}
	cl := serveGRPC(t, s.Register)
	wantDenied(t, check(t, cl, creq{tenant: "tenant-a", route: "orders"}), 503, ReasonNotReady)
	s.Update(newWorld(t).cat)
	if err := s.Ready(); err != nil {
		t.Error(err)
	}
}

func TestMetrics(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	s, cl := newServer(t, w, Options{Registerer: reg, MetricsTenantLabels: true})
	wantDenied(t, check(t, cl, creq{tenant: "tenant-a", route: "orders"}), 401, ReasonMissingCredentials)
	wantAllowed(t, check(t, cl, creq{tenant: "tenant-a", route: "orders", headers: map[string]string{"x-api-key": w.apiKey["a"]}}), "tenant-a")
	if v := counterValue(t, s.metrics.decisions.WithLabelValues("deny", string(ReasonMissingCredentials), "tenant-a")); v != 1 {
		t.Errorf("deny counter %v", v)
	}
	if v := counterValue(t, s.metrics.decisions.WithLabelValues("allow", "ok", "tenant-a")); v != 1 {
		t.Errorf("allow counter %v", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "tenantmesh_authz_check_duration_seconds" {
			found = mf.GetMetric()[0].GetHistogram().GetSampleCount() == 2
		}
	}
	if !found {
		t.Error("duration histogram missing or not counting checks")
	}
	if _, err := New(Options{Registerer: reg}); err == nil {
		t.Error("second Server on the same registry must fail loudly")
	}
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "context.pem")
	k1, kid1, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	k2, kid2, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) || kid1 != kid2 || kid1 == "" {
		t.Error("reloaded key differs")
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSigningKey(path); err == nil {
		t.Error("garbage key file accepted")
	}
	// The kid published by a Server using the key is the same thumbprint.
	s, err := New(Options{SigningKey: k1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if s.signer.kid != kid1 {
		t.Errorf("server kid %q, want %q", s.signer.kid, kid1)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
