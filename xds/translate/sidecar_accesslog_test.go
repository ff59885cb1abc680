package translate

import (
	"strings"
	"testing"

	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
)

// accessLogFormat is the JSON format of an HCM's one stdout access log.
func accessLogFormat(t *testing.T, hcm *hcmv3.HttpConnectionManager) map[string]string {
	t.Helper()
	if len(hcm.GetAccessLog()) != 1 {
		t.Fatalf("access logs %v: want one", hcm.GetAccessLog())
	}
	var cfg streamv3.StdoutAccessLog
	if err := hcm.GetAccessLog()[0].GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range cfg.GetLogFormat().GetJsonFormat().GetFields() {
		out[k] = v.GetStringValue()
	}
	return out
}

// TestSidecarAccessLogNamesItsTenant: a sidecar runs jwt_authn, never
// ext_authz, so ext_authz's metadata (which the sidecar's access log used
// to read) is never set there and every record had no tenant. Inbound,
// the tenant is the verified x-tenant-context's claims, exactly where
// RBAC reads tenant_id (jwt_authn's namespace, then the payload key);
// outbound, the listener is the sidecar tenant's by construction.
func TestSidecarAccessLogNamesItsTenant(t *testing.T) {
	res := translateSidecar(t, load(t, "sidecar"), sidecarNode("tenant-a", "executive"))
	in := accessLogFormat(t, listenerNamed(t, res, SidecarInboundName))

	jwt, rbac := inboundFilters(t, res)
	m := rbac.GetRules().GetPolicies()[envoy.PolicySameTenant].GetPrincipals()[0].GetSourcedMetadata().GetMetadataMatcher()
	var path []string
	for _, seg := range m.GetPath() {
		path = append(path, seg.GetKey())
	}
	if p := jwt.GetProviders()[ContextIssuer].GetPayloadInMetadata(); m.GetFilter() != envoy.FilterJWTAuthn || len(path) != 2 || path[0] != p {
		t.Fatalf("RBAC reads %s %v, jwt_authn writes its payload under %s %q", m.GetFilter(), path, envoy.FilterJWTAuthn, p)
	}
	// %DYNAMIC_METADATA(NAMESPACE:KEY*)%, nested keys colon separated
	// (docs/root/configuration/observability/access_log/usage.rst).
	if want := "%DYNAMIC_METADATA(" + m.GetFilter() + ":" + strings.Join(path, ":") + ")%"; in[KeyTenantID] != want {
		t.Errorf("inbound tenant_id %q, want %q (where RBAC reads the verified claim)", in[KeyTenantID], want)
	}
	if want := "%DYNAMIC_METADATA(" + envoy.FilterJWTAuthn + ":" + ContextPayloadKey + ":tier)%"; in["tier"] != want {
		t.Errorf("inbound tier %q, want %q", in["tier"], want)
	}

	out := accessLogFormat(t, listenerNamed(t, res, SidecarOutboundName))
	if out[KeyTenantID] != "tenant-a" || out["tier"] != "standard" {
		t.Errorf("outbound tenant_id %q, tier %q: want tenant-a, standard", out[KeyTenantID], out["tier"])
	}
	for side, f := range map[string]map[string]string{"inbound": in, "outbound": out} {
		for k, v := range f {
			if strings.Contains(v, envoy.FilterExtAuthz) {
				t.Errorf("%s field %s = %q reads ext_authz metadata, which a sidecar never has", side, k, v)
			}
		}
	}
}
