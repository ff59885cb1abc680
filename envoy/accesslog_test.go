package envoy

import (
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
)

func logFields(t *testing.T, build func() (*streamv3.StdoutAccessLog, error)) map[string]string {
	t.Helper()
	cfg, err := build()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range cfg.GetLogFormat().GetJsonFormat().GetFields() {
		out[k] = v.GetStringValue()
	}
	return out
}

func stdout(build func() (*accesslogv3.AccessLog, error)) func() (*streamv3.StdoutAccessLog, error) {
	return func() (*streamv3.StdoutAccessLog, error) {
		a, err := build()
		if err != nil {
			return nil, err
		}
		var cfg streamv3.StdoutAccessLog
		if err := a.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
			return nil, err
		}
		if err := cfg.ValidateAll(); err != nil {
			return nil, err
		}
		return &cfg, nil
	}
}

// TestAccessLogTenantSources: each listener kind reads its tenant where it
// has one — ext_authz's keys at the edge, the verified payload one level
// down in jwt_authn's namespace (colon-separated nested keys), or a value
// fixed by the translation — and the rest of the record is the same.
func TestAccessLogTenantSources(t *testing.T) {
	edge := logFields(t, stdout(StdoutJSONAccessLog))
	jwt := logFields(t, stdout(func() (*accesslogv3.AccessLog, error) { return JWTAuthnAccessLog("tm") }))
	fixed := logFields(t, stdout(func() (*accesslogv3.AccessLog, error) { return FixedTenantAccessLog("tenant-a", "gold") }))
	for _, c := range []struct {
		name         string
		f            map[string]string
		tenant, tier string
	}{
		{"edge", edge, "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tenant_id)%", "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tier)%"},
		{"jwt_authn", jwt, "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:tm:tenant_id)%", "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:tm:tier)%"},
		{"fixed", fixed, "tenant-a", "gold"},
	} {
		if c.f["tenant_id"] != c.tenant || c.f["tier"] != c.tier {
			t.Errorf("%s: tenant_id %q, tier %q; want %q, %q", c.name, c.f["tenant_id"], c.f["tier"], c.tenant, c.tier)
		}
		if len(c.f) != len(edge) || c.f["response_code"] != "%RESPONSE_CODE%" {
			t.Errorf("%s: record %v differs from the edge's beyond the tenant", c.name, c.f)
		}
	}
	if _, err := JWTAuthnAccessLog(""); err == nil {
		t.Error("jwt_authn access log without payload namespace accepted")
	}
	if _, err := FixedTenantAccessLog("a%REQ(X)%", ""); err == nil {
		t.Error("a fixed tenant with a command operator accepted")
	}
}
