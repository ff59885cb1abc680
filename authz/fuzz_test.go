package authz

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// fuzzCheckReq is one CheckRequest as the fuzzer shapes it.
type fuzzCheckReq struct {
	authorization, apiKey, tenantHdr string
	ctxTenant, route, sharedSvc      string
	host, path, method               string
	body                             []byte
	rawBody, headerMap, partial      bool
	extraName, extraValue            string
}

func (f fuzzCheckReq) proto() *authv3.CheckRequest {
	h := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			h[k] = v
		}
	}
	set("authorization", f.authorization)
	set("x-api-key", f.apiKey)
	set("x-tenant-id", f.tenantHdr)
	if f.partial {
		h[headerPartialBody] = "true"
	}
	if f.extraName != "" {
		h[f.extraName] = f.extraValue // may repeat or override one above
	}
	ext := map[string]string{}
	set2 := func(k, v string) {
		if v != "" {
			ext[k] = v
		}
	}
	set2(ExtTenantID, f.ctxTenant)
	set2(ExtRoute, f.route)
	set2(ExtSharedService, f.sharedSvc)
	hr := &authv3.AttributeContext_HttpRequest{Method: f.method, Host: f.host, Path: f.path}
	if f.rawBody {
		hr.RawBody = f.body
	} else {
		hr.Body = string(f.body)
	}
	if f.headerMap {
		// Envoy's encode_raw_headers form; a repeated key is sent twice.
		hm := &corev3.HeaderMap{}
		for k, v := range h {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
		if f.extraName != "" {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: f.extraName, RawValue: []byte(f.extraValue)})
		}
		hr.HeaderMap = hm
	} else {
		hr.Headers = h
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: hr},
		ContextExtensions: ext,
	}}
}

// FuzzCheck feeds arbitrary CheckRequests (credentials, tenant headers,
// context extensions, host, path, method, body in either field, headers
// in either form) to Check over the test world plus a shared service and
// a route with a recursive, numeric body schema. Whatever comes in, Check
// must answer with a well-formed CheckResponse (no error, no panic): a
// denial carries the HTTP status of a known reason, that reason in the
// header, the metadata and the JSON body; an allow is for a tenant the
// request may be decided for, matches any x-tenant-id sent, and carries an
// x-tenant-context signed by the server for that tenant.
//
// Committed seeds live in testdata/fuzz/FuzzCheck; valid credentials are
// added here because their keys are generated per run. Run it with
//
//	go test ./authz/ -run '^$' -fuzz '^FuzzCheck$' -fuzztime 10m
func FuzzCheck(f *testing.F) {
	w := newWorld(f)
	w.edit("tenant-a", func(sp *tenants.TenantSpec) {
		sp.Routes = append(sp.Routes, tenants.Route{Name: "tree", Match: tenants.RouteMatch{PathPrefix: "/api/tree/"}, Upstream: "svc",
			RequestValidation: &tenants.RequestValidation{MaxBodyBytes: 4096, BodySchema: json.RawMessage(
				`{"$defs":{"n":{"type":"object","required":["v"],"properties":{"v":{"type":"number","minimum":-1e9,"multipleOf":0.5},` +
					`"tags":{"type":"array","uniqueItems":true,"items":{"type":"string","pattern":"^[a-z]+$"}},` +
					`"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}},"additionalProperties":false}},"$ref":"#/$defs/n"}`)}})
	})
	w.build()
	s, err := New(Options{Logger: slog.New(slog.DiscardHandler), DecisionCacheSize: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	s.Update(w.cat)
	withShared(w, s, sharedSvc("geo"), sharedSvc("ml", "custom_models"))
	pub := s.signer.key.Public().(ed25519.PublicKey)
	known := map[Reason]bool{ReasonOK: true}
	for r := range messages["en"] {
		known[r] = true
	}

	tokA := w.tokenA(claimsA())
	tokB := sign(f, jwt.SigningMethodRS256, "b1", w.k.rsaB, jwt.MapClaims{"iss": issB, "org": "tenant-b", "scope": "admin", "exp": 4102444800})
	tokP := sign(f, jwt.SigningMethodES256, "p-ec", w.k.ecPlat, jwt.MapClaims{"iss": issPlatform, "aud": audPlatform, "tenant_id": "tenant-a", "exp": 4102444800})
	add := func(r fuzzCheckReq) {
		f.Add(r.authorization, r.apiKey, r.tenantHdr, r.ctxTenant, r.route, r.sharedSvc, r.host, r.path, r.method,
			r.body, r.rawBody, r.headerMap, r.partial, r.extraName, r.extraValue)
	}
	add(fuzzCheckReq{authorization: "Bearer " + tokA, ctxTenant: "tenant-a", route: "orders", method: "GET"})
	add(fuzzCheckReq{authorization: "Bearer " + tokA, tenantHdr: "tenant-a", ctxTenant: "tenant-a", route: "executive", method: "POST",
		body: []byte(`{"action":"a","parameters":{}}`)})
	add(fuzzCheckReq{authorization: "Bearer " + tokB, tenantHdr: "tenant-b", ctxTenant: "tenant-b", route: "executive", method: "PUT",
		body: []byte(`{"action":"a","parameters":[]}`), rawBody: true})
	add(fuzzCheckReq{apiKey: w.apiKey["a"], ctxTenant: "tenant-a", route: "analytics", method: "GET", headerMap: true})
	add(fuzzCheckReq{apiKey: w.apiKey["b"], tenantHdr: "tenant-a", ctxTenant: "tenant-b", route: "orders", method: "POST", body: []byte("{")})
	add(fuzzCheckReq{authorization: "Bearer " + tokA, apiKey: w.apiKey["b"], ctxTenant: "tenant-b", route: "orders", method: "GET"})
	add(fuzzCheckReq{authorization: "Bearer " + tokA, ctxTenant: "tenant-a", route: "tree", method: "POST",
		body: []byte(`{"v":1.5,"tags":["a","b"],"kids":[{"v":-2,"kids":[{"v":0}]}]}`)})
	add(fuzzCheckReq{authorization: "Bearer " + tokA, ctxTenant: "tenant-a", route: "tree", method: "POST",
		body: []byte(`{"v":1e400,"kids":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`)})
	add(fuzzCheckReq{authorization: "Bearer " + tokP, sharedSvc: "geo", host: "api.example.com", path: "/shared/geo/v1", method: "GET"})
	add(fuzzCheckReq{apiKey: w.apiKey["a"], sharedSvc: "ml", path: "/shared/ml/x", method: "GET", extraName: "x-tenant-id", extraValue: "tenant-b", headerMap: true})
	add(fuzzCheckReq{authorization: "Bearer " + tokA, ctxTenant: "tenant-a", route: "executive", method: "POST", partial: true,
		body: []byte(`{"action":"a"`)})

	f.Fuzz(func(t *testing.T, authorization, apiKey, tenantHdr, ctxTenant, route, sharedService, host, path, method string,
		body []byte, rawBody, headerMap, partial bool, extraName, extraValue string) {
		fr := fuzzCheckReq{authorization, apiKey, tenantHdr, ctxTenant, route, sharedService, host, path, method,
			body, rawBody, headerMap, partial, extraName, extraValue}
		req := fr.proto()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := s.Check(ctx, req)
		if err != nil || resp == nil {
			t.Fatalf("Check: %v, %v", resp, err)
		}
		if resp.GetStatus().GetCode() != int32(codes.OK) {
			checkFuzzDenial(t, resp, known)
			return
		}
		checkFuzzAllow(t, resp, readRequest(req), pub, w)
	})
}

// checkFuzzDenial: a known reason, its status, and the JSON body naming it.
func checkFuzzDenial(t *testing.T, resp *authv3.CheckResponse, known map[Reason]bool) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if d == nil || resp.GetOkResponse() != nil {
		t.Fatalf("denial without denied_response (or with ok_response): %v", resp)
	}
	reason, _ := headerValue(d.GetHeaders(), HeaderReason)
	r := Reason(reason)
	if !known[r] || r == ReasonOK {
		t.Fatalf("denial with unknown reason %q", reason)
	}
	if got := int(d.GetStatus().GetCode()); got != r.HTTPStatus() {
		t.Fatalf("reason %s with HTTP status %d, want %d", r, got, r.HTTPStatus())
	}
	if resp.GetStatus().GetCode() != int32(r.grpcCode()) {
		t.Fatalf("reason %s with grpc code %d", r, resp.GetStatus().GetCode())
	}
	if got := resp.GetDynamicMetadata().GetFields()[DenialReasonKey].GetStringValue(); got != reason {
		t.Fatalf("metadata reason %q, header %q", got, reason)
	}
	var body errorBody
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body.Error.Code != r || body.Error.Message == "" {
		t.Fatalf("body %q (%v)", d.GetBody(), err)
	}
}

// checkFuzzAllow: the allow is for a tenant the request may be decided
// for, agrees with x-tenant-id, and its x-tenant-context verifies.
func checkFuzzAllow(t *testing.T, resp *authv3.CheckResponse, r *request, pub ed25519.PublicKey, w *world) {
	t.Helper()
	if resp.GetDeniedResponse() != nil {
		t.Fatal("allow with a denied_response")
	}
	if !r.hasBearer && r.apiKey == "" {
		t.Fatal("allowed without credentials")
	}
	hs := resp.GetOkResponse().GetHeaders()
	got, _ := headerValue(hs, HeaderTenantID)
	switch {
	case got == "":
		t.Fatal("allow without x-tenant-id")
	case r.routeTenant != "" && got != r.routeTenant:
		t.Fatalf("allowed tenant %q on a route of %q", got, r.routeTenant)
	case r.routeTenant == "" && r.sharedService == "":
		t.Fatalf("allowed tenant %q on a request without a route", got)
	case r.hasTenant && r.tenantHdr != got:
		t.Fatalf("allowed tenant %q with x-tenant-id %q", got, r.tenantHdr)
	}
	if tn, ok := w.tenants[got]; !ok || !tn.Active() {
		t.Fatalf("allowed tenant %q, which is not an active tenant", got)
	}
	tok, _ := headerValue(hs, HeaderTenantContext)
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(ContextTokenIssuer), jwt.WithAudience(got)); err != nil {
		t.Fatalf("x-tenant-context does not verify: %v", err)
	}
	if claims["tenant_id"] != got {
		t.Fatalf("x-tenant-context for %v, header %q", claims["tenant_id"], got)
	}
}
