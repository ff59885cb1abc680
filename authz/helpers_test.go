package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/tenantmesh/tenantmesh/authz/jwks"
	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"

	"github.com/tenantmesh/tenantmesh/internal/grpctest"
)

// Test identities. Keys are generated once per test binary.
const (
	issA        = "https://idp.tenant-a.example"
	issB        = "https://idp.tenant-b.example"
	issPlatform = "https://login.platform.example"
	audA        = "executive-api"
	audPlatform = "tenantmesh"
)

type testKeys struct {
	rsaA   *rsa.PrivateKey // tenant-a issuer, RS256, kid a1
	rsaB   *rsa.PrivateKey // tenant-b issuer, RS256, kid b1
	ecPlat *ecdsa.PrivateKey
	edPlat ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func tkeys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keys.rsaA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.rsaB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.ecPlat, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, keys.edPlat, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return &keys
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

// jwkOf renders a public key as a JWK.
func jwkOf(kid string, pub any) map[string]string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name,
			"x": b64u(pad(raw[1:1+size], size)), "y": b64u(pad(raw[1+size:], size))}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(k)}
	}
	panic("unsupported key")
}

func jwksJSON(keys ...map[string]string) string {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jwksServer is a real HTTP JWKS endpoint that counts fetches and can be
// switched to failing.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	failing atomic.Bool
	body    atomic.Value // string
}

func newJWKSServer(t testing.TB, body string) *jwksServer {
	t.Helper()
	js := &jwksServer{}
	js.body.Store(body)
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		if js.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if _, err := io.WriteString(w, js.body.Load().(string)); err != nil {
			t.Logf("jwks write: %v", err)
		}
	}))
	t.Cleanup(js.Close)
	return js
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// world is the catalog of the tests: tenant-a (own RS256 issuer by JWKS
// URI, API keys, German errors), tenant-b (own RS256 issuer inline, French
// errors), tenant-s (suspended) and a platform issuer (ES256 and EdDSA).
type world struct {
	t       testing.TB
	k       *testKeys
	idpA    *jwksServer
	mesh    *tenants.MeshConfig
	tenants map[string]*tenants.Tenant
	keys    []*tenants.APIKey
	rev     int64
	cat     *tenants.Catalog
	// API keys handed to callers, by name.
	apiKey map[string]string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	k := tkeys(t)
	w := &world{t: t, k: k, tenants: map[string]*tenants.Tenant{}, apiKey: map[string]string{}}
	w.idpA = newJWKSServer(t, jwksJSON(jwkOf("a1", &k.rsaA.PublicKey)))
	w.mesh = &tenants.MeshConfig{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindMeshConfig},
		Metadata: tenants.ObjectMeta{Name: tenants.MeshConfigName, ResourceVersion: "1"},
		Spec: tenants.MeshConfigSpec{JWT: []tenants.JWTIssuer{{
			Issuer: issPlatform, Audiences: []string{audPlatform},
			JWKS:       jwksJSON(jwkOf("p-ec", &k.ecPlat.PublicKey), jwkOf("p-ed", k.edPlat.Public())),
			Algorithms: []string{"ES256", "EdDSA"},
		}}},
	}
	schema := json.RawMessage(`{"type":"object","required":["action","parameters"],"properties":{"action":{"type":"string"}}}`)
	routes := func() []tenants.Route {
		return []tenants.Route{
			{Name: "orders", Match: tenants.RouteMatch{PathPrefix: "/api/orders/"}, Upstream: "svc"},
			{Name: "executive", Match: tenants.RouteMatch{PathPrefix: "/api/executive/"}, Upstream: "svc",
				Roles: []string{"admin", "user"}, RequestValidation: &tenants.RequestValidation{BodySchema: schema}},
			{Name: "analytics", Match: tenants.RouteMatch{PathPrefix: "/api/analytics/"}, Upstream: "svc",
				Features: []string{"advanced_analytics"}},
			{Name: "models", Match: tenants.RouteMatch{PathPrefix: "/api/models/"}, Upstream: "svc",
				Features: []string{"custom_models"}},
		}
	}
	mk := func(id string, fn func(*tenants.TenantSpec)) {
		tn := &tenants.Tenant{
			TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
			Metadata: tenants.ObjectMeta{Name: id},
			Spec: tenants.TenantSpec{
				Tier: "enterprise", Hosts: []string{id + ".api.example.com"}, PathPrefix: true,
				Routes: routes(), Upstreams: []tenants.Upstream{{Name: "svc", Endpoints: []tenants.Endpoint{{Address: id + "-svc", Port: 8080}}}},
			},
		}
		fn(&tn.Spec)
		w.tenants[id] = tn
	}
	mk("tenant-a", func(s *tenants.TenantSpec) {
		s.Features = []string{"advanced_analytics"}
		s.Auth = tenants.AuthSpec{APIKeys: true, JWT: []tenants.JWTIssuer{{
			Issuer: issA, Audiences: []string{audA}, JWKSURI: w.idpA.URL + "/jwks.json", Algorithms: []string{"RS256"},
		}}}
		s.Errors = &tenants.ErrorsSpec{Locale: "de"}
	})
	mk("tenant-b", func(s *tenants.TenantSpec) {
		s.Tier = "standard"
		s.Auth = tenants.AuthSpec{APIKeys: true, JWT: []tenants.JWTIssuer{{
			Issuer: issB, JWKS: jwksJSON(jwkOf("b1", &k.rsaB.PublicKey)), Algorithms: []string{"RS256"},
			TenantClaim: "org", RolesClaim: "scope",
		}}}
		s.Errors = &tenants.ErrorsSpec{Locale: "fr"}
	})
	mk("tenant-s", func(s *tenants.TenantSpec) {
		s.Status = tenants.StatusSuspended
		s.Auth = tenants.AuthSpec{APIKeys: true}
	})
	mk("tenant-nokeys", func(s *tenants.TenantSpec) {})
	past := time.Now().Add(-time.Hour)
	w.addKey("a", "tenant-a", nil, false)
	w.addKey("b", "tenant-b", nil, false)
	w.addKey("s", "tenant-s", nil, false)
	w.addKey("nokeys", "tenant-nokeys", nil, false)
	w.addKey("revoked", "tenant-a", nil, true)
	w.addKey("expired", "tenant-a", &past, false)
	w.build()
	return w
}

func (w *world) addKey(name, tenant string, exp *time.Time, revoked bool) {
	id, key, err := tenants.NewAPIKey()
	if err != nil {
		w.t.Fatal(err)
	}
	_, secret, _ := tenants.ParseAPIKey(key)
	w.keys = append(w.keys, &tenants.APIKey{ID: id, Tenant: tenant, Hash: tenants.HashAPIKeySecret(secret),
		CreatedAt: time.Now(), ExpiresAt: exp, Revoked: revoked})
	w.apiKey[name] = key
}

// edit replaces a tenant with a changed copy (the Catalog shares tenants
// by pointer, so editing in place would not be seen as a change).
func (w *world) edit(id string, fn func(*tenants.TenantSpec)) {
	c := *w.tenants[id]
	c.Spec.Auth.JWT = append([]tenants.JWTIssuer(nil), c.Spec.Auth.JWT...)
	c.Spec.Routes = append([]tenants.Route(nil), c.Spec.Routes...)
	c.Spec.Features = append([]string(nil), c.Spec.Features...)
	fn(&c.Spec)
	w.tenants[id] = &c
}

// build makes the next catalog (sharing unchanged tenants with the last).
func (w *world) build() *tenants.Catalog {
	w.rev++
	in := tenants.Input{Revision: w.rev, Mesh: w.mesh, APIKeys: w.keys}
	for _, id := range []string{"tenant-a", "tenant-b", "tenant-s", "tenant-nokeys"} {
		if tn, ok := w.tenants[id]; ok {
			in.Tenants = append(in.Tenants, tn)
		}
	}
	w.cat = tenants.NewCatalog(in, w.cat)
	return w.cat
}

// claims returns valid claims of a tenant-a user; callers adjust them.
func claimsA() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": issA, "aud": audA, "sub": "alice", "tenant_id": "tenant-a",
		"roles": []string{"user"}, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

func sign(t testing.TB, method jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func (w *world) tokenA(c jwt.MapClaims) string {
	return sign(w.t, jwt.SigningMethodRS256, "a1", w.k.rsaA, c)
}

// newServer starts a Server with the world's catalog behind real gRPC on
// loopback.
func newServer(t testing.TB, w *world, opts Options) (*Server, authv3.AuthorizationClient) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	s.Update(w.cat)
	return s, serveGRPC(t, s.Register)
}

func serveGRPC(t testing.TB, register func(*grpc.Server)) authv3.AuthorizationClient {
	t.Helper()
	addr := grpctest.Serve(t, register)
	conn := grpctest.Dial(t, addr, nil)
	return authv3.NewAuthorizationClient(conn)
}

// creq is a CheckRequest for a route of a tenant, as Envoy sends it.
type creq struct {
	tenant, route, host, path, method, body string
	headers                                 map[string]string
}

func (c creq) proto() *authv3.CheckRequest {
	h := map[string]string{}
	for k, v := range c.headers {
		h[k] = v
	}
	method := c.method
	if method == "" {
		method = "GET"
	}
	ext := map[string]string{}
	if c.tenant != "" {
		ext[ExtTenantID] = c.tenant
	}
	if c.route != "" {
		ext[ExtRoute] = c.route
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: c.host, Path: c.path, Headers: h, Body: c.body,
		}},
		ContextExtensions: ext,
	}}
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

func check(t testing.TB, cl authv3.AuthorizationClient, c creq) *authv3.CheckResponse {
	t.Helper()
	resp, err := cl.Check(context.Background(), c.proto())
	if err != nil {
		t.Fatalf("Check returned a gRPC error (denials must be CheckResponses): %v", err)
	}
	return resp
}

func headerValue(hs []*corev3.HeaderValueOption, key string) (string, bool) {
	for _, h := range hs {
		if h.GetHeader().GetKey() == key {
			return h.GetHeader().GetValue(), true
		}
	}
	return "", false
}

// wantDenied asserts a denial with the HTTP status and reason, the JSON
// error body, the reason header, and the 401 challenge.
func wantDenied(t testing.TB, resp *authv3.CheckResponse, status int, reason Reason) {
	t.Helper()
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		t.Fatalf("allowed; want %d %s", status, reason)
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("no denied_response; status %v", resp.GetStatus())
	}
	if got := int(d.GetStatus().GetCode()); got != status {
		t.Errorf("HTTP status %d, want %d (reason header %v)", got, status, d.GetHeaders())
	}
	if got, _ := headerValue(d.GetHeaders(), HeaderReason); got != string(reason) {
		t.Errorf("reason %q, want %q", got, reason)
	}
	if ct, _ := headerValue(d.GetHeaders(), "content-type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	// The edge's local replies keep this body only because the denial says
	// it is one (envoy.ExtAuthzDenialKey); without it a 503 would be
	// rewritten as authz_unavailable.
	if got := resp.GetDynamicMetadata().GetFields()[envoy.ExtAuthzDenialKey].GetStringValue(); got != string(reason) {
		t.Errorf("dynamic metadata %s = %q, want %q", envoy.ExtAuthzDenialKey, got, reason)
	}
	var body errorBody
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", d.GetBody(), err)
	}
	if body.Error.Code != reason || body.Error.Message == "" {
		t.Errorf("body %q", d.GetBody())
	}
	wa, ok := headerValue(d.GetHeaders(), "www-authenticate")
	if status == 401 && (!ok || wa == "") {
		t.Errorf("401 without www-authenticate")
	}
	if status != 401 && ok {
		t.Errorf("%d with www-authenticate %q", status, wa)
	}
	if wantCode := map[int]codes.Code{401: codes.Unauthenticated, 403: codes.PermissionDenied}[status]; wantCode != 0 &&
		resp.GetStatus().GetCode() != int32(wantCode) {
		t.Errorf("grpc status %v, want %v", codes.Code(resp.GetStatus().GetCode()), wantCode)
	}
}

// wantAllowed asserts an allow and returns the x-tenant-context.
func wantAllowed(t testing.TB, resp *authv3.CheckResponse, tenant string) string {
	t.Helper()
	if resp.GetStatus().GetCode() != int32(codes.OK) {
		d := resp.GetDeniedResponse()
		t.Fatalf("denied %d: %s", d.GetStatus().GetCode(), d.GetBody())
	}
	if _, denied := resp.GetDynamicMetadata().GetFields()[DenialReasonKey]; denied {
		t.Errorf("allow carries %s: %v", DenialReasonKey, resp.GetDynamicMetadata())
	}
	ok := resp.GetOkResponse()
	for _, h := range ok.GetHeaders() {
		if h.GetAppend() == nil || h.GetAppend().GetValue() {
			t.Errorf("header %s: append must be explicitly false, is %v", h.GetHeader().GetKey(), h.GetAppend())
		}
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append_action %v", h.GetHeader().GetKey(), h.GetAppendAction())
		}
	}
	if got, _ := headerValue(ok.GetHeaders(), HeaderTenantID); got != tenant {
		t.Errorf("x-tenant-id %q, want %q", got, tenant)
	}
	if got := resp.GetDynamicMetadata().GetFields()["tenant_id"].GetStringValue(); got != tenant {
		t.Errorf("dynamic metadata tenant_id %q, want %q", got, tenant)
	}
	if rm := ok.GetHeadersToRemove(); len(rm) != 1 || rm[0] != HeaderAPIKey {
		t.Errorf("headers_to_remove %v", rm)
	}
	ctxTok, found := headerValue(ok.GetHeaders(), HeaderTenantContext)
	if !found || ctxTok == "" {
		t.Fatalf("no x-tenant-context")
	}
	return ctxTok
}

// verifyContext checks an x-tenant-context with the key set the server
// publishes over HTTP, as a backend would.
func verifyContext(t testing.TB, s *Server, tok string) jwt.MapClaims {
	t.Helper()
	srv := httptest.NewServer(s.JWKSHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwks.Parse(body)
	if err != nil {
		t.Fatalf("published jwks: %v", err)
	}
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		ks, err := set.Keys(context.Background(), kid)
		if err != nil {
			return nil, err
		}
		return ks[0].Public, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(ContextTokenIssuer), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("x-tenant-context does not verify: %v", err)
	}
	return parsed.Claims.(jwt.MapClaims)
}
