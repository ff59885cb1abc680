package envoy

import (
	"testing"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
)

func TestRBACFilterAllowsOnlyPrincipalOrExemptPath(t *testing.T) {
	if _, err := RBACFilter(nil, nil); err == nil {
		t.Error("RBAC without principal accepted")
	}
	f, err := RBACFilter(JWTClaimPrincipal("tm", "tenant_id", "tenant-a"), []string{"/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg rbacv3.RBAC
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if cfg.GetRules().GetAction().String() != "ALLOW" || len(cfg.GetRules().GetPolicies()) != 2 {
		t.Fatalf("rules %v", cfg.GetRules())
	}
	exempt := cfg.GetRules().GetPolicies()[PolicyExempt]
	if exempt.GetPermissions()[0].GetUrlPath().GetPath().GetExact() != "/healthz" || !exempt.GetPrincipals()[0].GetAny() {
		t.Errorf("exempt policy %v", exempt)
	}
	if f, err = RBACFilter(HeaderPrincipal("x-tenant-id", "tenant-a"), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.GetRules().GetPolicies()[PolicyExempt]; ok {
		t.Error("no exempt paths given, but an exempt policy exists")
	}
}

func TestJWTAuthnFilterRequiresTokenOutsideExemptPaths(t *testing.T) {
	if _, err := JWTAuthnFilter(JWTAuthnOptions{Provider: "p"}); err == nil {
		t.Error("jwt_authn without header, JWKS URI and cluster accepted")
	}
	f, err := JWTAuthnFilter(JWTAuthnOptions{Provider: "p", Issuer: "tenantmesh", Audiences: []string{"tenant-a"},
		Header: "x-tenant-context", JWKSURI: "http://127.0.0.1:9102/.well-known/jwks.json", JWKSCluster: "jwks",
		PayloadNamespace: "tm", Exempt: []string{"/healthz", "/ready"}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg jwtauthnv3.JwtAuthentication
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	rules := cfg.GetRules()
	if len(rules) != 3 || rules[0].GetRequires() != nil || rules[1].GetRequires() != nil ||
		rules[2].GetMatch().GetPrefix() != "/" || rules[2].GetRequires().GetProviderName() != "p" {
		t.Errorf("rules %v: exempt paths first without requirement, then everything requires the provider", rules)
	}
	if p := cfg.GetProviders()["p"]; !p.GetRequireExpiration() || p.GetRemoteJwks().GetAsyncFetch() == nil {
		t.Errorf("provider %v", p)
	}
}
