package tenants

import (
	"reflect"
	"testing"
	"time"
)

func TestDefaultedTenantTakesTierDefaults(t *testing.T) {
	in := mustDecode[*Tenant](t, `
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: a}
spec:
  tier: enterprise
  auth: {jwt: [{issuer: https://idp.example, jwksUri: https://idp.example/jwks}]}
  routes: [{name: r, match: {pathPrefix: /}, upstream: u, requestValidation: {bodySchema: {type: object}}}]
  upstreams: [{name: u, endpoints: [{address: 10.0.0.1, port: 80}]}]
`)
	tier := BuiltinTiers()["enterprise"]
	got := DefaultedTenant(in, tier)
	s := got.Spec
	if s.RateLimits != tier.Spec.RateLimits || s.MaxConcurrentRequests != 1000 {
		t.Errorf("tier limits not applied: %+v max %d", s.RateLimits, s.MaxConcurrentRequests)
	}
	if s.Status != StatusActive || s.Errors.Locale != "en" {
		t.Errorf("status %q locale %+v", s.Status, s.Errors)
	}
	j := s.Auth.JWT[0]
	if j.TenantClaim != "tenant_id" || j.RolesClaim != "roles" || !reflect.DeepEqual(j.Algorithms, []string{"RS256", "ES256"}) {
		t.Errorf("issuer defaults: %+v", j)
	}
	r := s.Routes[0]
	if r.Timeout != "15s" || r.RequestValidation.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("route defaults: timeout %q body %d", r.Timeout, r.RequestValidation.MaxBodyBytes)
	}
	u := s.Upstreams[0]
	if u.LBPolicy != LBRoundRobin || u.Protocol != ProtocolHTTP1 || u.ConnectTimeout != "2s" || u.Endpoints[0].Weight != 1 {
		t.Errorf("upstream defaults: %+v", u)
	}
	res, ok := got.Resolved()
	if !ok || res.Priority != PriorityHigh || len(res.Routes) != 1 || len(res.Upstreams) != 1 {
		t.Fatalf("resolved view %+v, %v", res, ok)
	}
	if rr := res.Routes[0]; rr.Route != &s.Routes[0] || rr.Timeout != 15*time.Second || rr.PerTryTimeout != 0 {
		t.Errorf("resolved route %+v", rr)
	}
	if ru := res.Upstreams[0]; ru.Upstream != &s.Upstreams[0] || ru.ConnectTimeout != 2*time.Second {
		t.Errorf("resolved upstream %+v", ru)
	}

	// The input is untouched: the Catalog keeps it to recognise unchanged tenants.
	if in.Spec.Status != "" || in.Spec.RateLimits != nil || in.Spec.Routes[0].Timeout != "" ||
		in.Spec.Routes[0].RequestValidation.MaxBodyBytes != 0 || in.Spec.Upstreams[0].Endpoints[0].Weight != 0 ||
		in.Spec.Auth.JWT[0].TenantClaim != "" || in.Spec.Errors != nil {
		t.Errorf("DefaultedTenant modified its input: %+v", in.Spec)
	}
}

func TestDefaultedTenantValuesWin(t *testing.T) {
	in := mustDecode[*Tenant](t, `
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: a}
spec:
  tier: free
  status: suspended
  maxConcurrentRequests: 7
  errors: {locale: fr}
  rateLimits:
    local: {requests: 3, per: minute}
    global: [{requests: 9, per: hour}]
  auth: {jwt: [{issuer: i, jwksUri: https://i/jwks, algorithms: [PS256], tenantClaim: org, rolesClaim: groups}]}
  routes: [{name: r, match: {pathPrefix: /}, upstream: u, timeout: 3s}]
  upstreams: [{name: u, lbPolicy: maglev, protocol: grpc, connectTimeout: 1s, endpoints: [{address: 10.0.0.1, port: 80, weight: 5}]}]
`)
	s := DefaultedTenant(in, BuiltinTiers()["free"]).Spec
	if s.Status != StatusSuspended || s.MaxConcurrentRequests != 7 || s.Errors.Locale != "fr" {
		t.Errorf("scalars: %+v", s)
	}
	if *s.RateLimits.Local != (LocalRateLimit{Requests: 3, Per: UnitMinute}) || s.RateLimits.Global[0] != (GlobalRateLimit{Requests: 9, Per: UnitHour}) {
		t.Errorf("limits: %+v %+v", s.RateLimits.Local, s.RateLimits.Global)
	}
	j := s.Auth.JWT[0]
	if j.TenantClaim != "org" || j.RolesClaim != "groups" || !reflect.DeepEqual(j.Algorithms, []string{"PS256"}) {
		t.Errorf("issuer: %+v", j)
	}
	if s.Routes[0].Timeout != "3s" {
		t.Errorf("route timeout %q", s.Routes[0].Timeout)
	}
	u := s.Upstreams[0]
	if u.LBPolicy != LBMaglev || u.Protocol != ProtocolGRPC || u.ConnectTimeout != "1s" || u.Endpoints[0].Weight != 5 {
		t.Errorf("upstream: %+v", u)
	}
}

// A tenant that sets only its local limit still gets the tier's global
// quota, and the other way round.
func TestDefaultedTenantRateLimitHalves(t *testing.T) {
	tier := BuiltinTiers()["standard"]
	local := &LocalRateLimit{Requests: 1, Per: UnitSecond}
	global := []GlobalRateLimit{{Requests: 2, Per: UnitDay}}

	onlyLocal := &Tenant{Metadata: ObjectMeta{Name: "a"}, Spec: TenantSpec{RateLimits: &RateLimits{Local: local}}}
	s := DefaultedTenant(onlyLocal, tier).Spec
	if s.RateLimits.Local != local || !reflect.DeepEqual(s.RateLimits.Global, tier.Spec.RateLimits.Global) {
		t.Errorf("only local: %+v", s.RateLimits)
	}
	if onlyLocal.Spec.RateLimits.Global != nil {
		t.Error("defaulting wrote into the input's rate limits")
	}

	onlyGlobal := &Tenant{Metadata: ObjectMeta{Name: "a"}, Spec: TenantSpec{RateLimits: &RateLimits{Global: global}}}
	s = DefaultedTenant(onlyGlobal, tier).Spec
	if s.RateLimits.Local != tier.Spec.RateLimits.Local || !reflect.DeepEqual(s.RateLimits.Global, global) {
		t.Errorf("only global: %+v", s.RateLimits)
	}
}

func TestDefaultedTenantWithoutTier(t *testing.T) {
	s := DefaultedTenant(&Tenant{Metadata: ObjectMeta{Name: "a"}}, nil).Spec
	if s.Tier != DefaultTier || s.RateLimits != nil || s.MaxConcurrentRequests != 0 {
		t.Errorf("got %+v", s)
	}
}

func TestDefaultedMeshConfig(t *testing.T) {
	d := DefaultedMeshConfig(nil)
	s := d.Spec
	if d.Metadata.Name != MeshConfigName || s.EdgePort != 10000 || s.SidecarInboundPort != 15006 || s.SidecarOutboundPort != 15001 ||
		s.Authz.Address != "127.0.0.1:9191" || s.Authz.Timeout != "250ms" ||
		s.RateLimit.Address != "127.0.0.1:8081" || s.RateLimit.Timeout != "100ms" ||
		s.ControlPlaneAdmin != "127.0.0.1:9102" {
		t.Errorf("defaults: %+v", d)
	}
	if r, ok := d.Resolved(); !ok || r.AuthzTimeout != 250*time.Millisecond || r.RateLimitTimeout != 100*time.Millisecond ||
		r.SidecarRouteTimeout != DefaultRouteTimeout || r.SidecarAppConnectTimeout != DefaultConnectTimeout {
		t.Errorf("resolved mesh %+v, %v", r, ok)
	}

	in := &MeshConfig{Metadata: ObjectMeta{Name: "default"}, Spec: MeshConfigSpec{
		EdgePort: 8080,
		JWT:      []JWTIssuer{{Issuer: "p", JWKSURI: "https://p/jwks"}},
		Authz:    AuthzSettings{Timeout: "1s"},
	}}
	s = DefaultedMeshConfig(in).Spec
	if r, _ := DefaultedMeshConfig(in).Resolved(); r.AuthzTimeout != time.Second {
		t.Errorf("resolved authz timeout %v, want the given 1s", r.AuthzTimeout)
	}
	if s.EdgePort != 8080 || s.Authz.Timeout != "1s" || s.Authz.Address != DefaultAuthzAddress || s.JWT[0].TenantClaim != "tenant_id" {
		t.Errorf("given values must win, the rest default: %+v", s)
	}
	if in.Spec.Authz.Address != "" || in.Spec.JWT[0].TenantClaim != "" {
		t.Error("DefaultedMeshConfig modified its input")
	}
}

func TestBuiltinTiers(t *testing.T) {
	a, b := BuiltinTiers(), BuiltinTiers()
	for _, name := range []string{"free", "standard", "enterprise"} {
		tier := a[name]
		if tier == nil || tier.Metadata.Name != name {
			t.Fatalf("built-in tier %s missing", name)
		}
		if errs := Validate(tier, nil); len(errs) != 0 {
			t.Errorf("built-in tier %s is invalid: %v", name, errs)
		}
	}
	delete(a, "free")
	if b["free"] == nil || BuiltinTiers()["free"] == nil {
		t.Error("BuiltinTiers must return a fresh map")
	}
	if a["enterprise"].Spec.Priority != PriorityHigh || b["free"].Spec.MaxConcurrentRequests >= b["standard"].Spec.MaxConcurrentRequests {
		t.Error("tiers must be ordered free < standard < enterprise")
	}
}
