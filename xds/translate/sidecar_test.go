package translate

import (
	"errors"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

func sidecarNode(tenant, service string) Node {
	return Node{ID: "sc", Role: RoleSidecar, Tenant: tenant, Service: service, AppPort: 8080}
}

func translateSidecar(t *testing.T, cat *tenants.Catalog, n Node) *Resources {
	t.Helper()
	res, err := TranslateSidecar(cat, n)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func listenerNamed(t *testing.T, res *Resources, name string) *hcmv3.HttpConnectionManager {
	t.Helper()
	for _, r := range res.Listeners {
		l := r.(*listenerv3.Listener)
		if l.GetName() != name {
			continue
		}
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		return &hcm
	}
	t.Fatalf("no listener %s", name)
	return nil
}

func routeConfigNamed(t *testing.T, res *Resources, name string) *routev3.RouteConfiguration {
	t.Helper()
	for _, r := range res.Routes {
		if rc := r.(*routev3.RouteConfiguration); rc.GetName() == name {
			return rc
		}
	}
	t.Fatalf("no route configuration %s", name)
	return nil
}

// inboundFilters decodes the jwt_authn and RBAC configs of sidecar-inbound.
func inboundFilters(t *testing.T, res *Resources) (*jwtauthnv3.JwtAuthentication, *rbacv3.RBAC) {
	t.Helper()
	hcm := listenerNamed(t, res, SidecarInboundName)
	var jwt jwtauthnv3.JwtAuthentication
	var rbac rbacv3.RBAC
	var names []string
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, f.GetName())
		var err error
		switch f.GetName() {
		case envoy.FilterJWTAuthn:
			err = f.GetTypedConfig().UnmarshalTo(&jwt)
		case envoy.FilterRBAC:
			err = f.GetTypedConfig().UnmarshalTo(&rbac)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(names, ",") != envoy.FilterJWTAuthn+","+envoy.FilterRBAC+","+envoy.FilterRouter {
		t.Fatalf("inbound filters %v: want jwt_authn, rbac, router", names)
	}
	return &jwt, &rbac
}

// TestSidecarHasNoRouteToOtherTenants: tenant-b also has a service named
// "executive"; tenant-a's sidecar must reach only tenant-a's, and nothing
// of tenant-b's exists in its configuration at all.
func TestSidecarHasNoRouteToOtherTenants(t *testing.T) {
	cat := load(t, "sidecar")
	res := translateSidecar(t, cat, sidecarNode("tenant-a", "executive"))
	out := routeConfigNamed(t, res, SidecarOutboundName)
	domains := map[string]string{}
	for _, vh := range out.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			domains[d] = vh.GetRoutes()[0].GetRoute().GetCluster()
		}
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); c != "" && !strings.HasPrefix(c, "tenant-a.") {
				t.Errorf("outbound route %s goes to %s, not a tenant-a cluster", r.GetName(), c)
			}
			if h := r.GetRequestHeadersToAdd(); r.GetRoute() != nil && (len(h) != 1 || h[0].GetHeader().GetValue() != "tenant-a") {
				t.Errorf("outbound route %s does not set x-tenant-id: tenant-a: %v", r.GetName(), h)
			}
		}
	}
	for d, want := range map[string]string{
		"executive": "tenant-a.executive", "executive.tenant-a": "tenant-a.executive",
		"analytics": "tenant-a.analytics", "geo.shared": "tenant-a.shared.geo",
	} {
		if domains[d] != want {
			t.Errorf("domain %s → %q, want %q", d, domains[d], want)
		}
	}
	for _, d := range []string{"executive.tenant-b", "models.shared"} {
		if _, ok := domains[d]; ok {
			t.Errorf("domain %s must not exist for tenant-a (other tenant / not entitled)", d)
		}
	}
	if domains["*"] != "" {
		t.Errorf("catch-all must be a direct response, goes to %q", domains["*"])
	}
	for _, r := range res.Clusters {
		if name := r.(*clusterv3.Cluster).GetName(); strings.HasPrefix(name, "tenant-b") || strings.Contains(name, "models") {
			t.Errorf("cluster %s in tenant-a's sidecar", name)
		}
	}
}

// TestSidecarInboundOnlyAdmitsItsTenant: the token must be for the
// sidecar's tenant (aud) and RBAC must match the verified tenant_id claim.
func TestSidecarInboundOnlyAdmitsItsTenant(t *testing.T) {
	cat := load(t, "sidecar")
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		res := translateSidecar(t, cat, sidecarNode(tenant, "executive"))
		jwt, rbac := inboundFilters(t, res)
		p := jwt.GetProviders()[ContextIssuer]
		if p.GetIssuer() != ContextIssuer || len(p.GetAudiences()) != 1 || p.GetAudiences()[0] != tenant ||
			p.GetFromHeaders()[0].GetName() != ContextHeader || p.GetFromHeaders()[0].GetValuePrefix() != "" ||
			p.GetPayloadInMetadata() != ContextPayloadKey || !p.GetForward() {
			t.Errorf("%s: jwt provider %v", tenant, p)
		}
		policy := rbac.GetRules().GetPolicies()[envoy.PolicySameTenant]
		m := policy.GetPrincipals()[0].GetSourcedMetadata().GetMetadataMatcher()
		if m.GetFilter() != envoy.FilterJWTAuthn || len(m.GetPath()) != 2 ||
			m.GetPath()[0].GetKey() != ContextPayloadKey || m.GetPath()[1].GetKey() != KeyTenantID ||
			m.GetValue().GetStringMatch().GetExact() != tenant {
			t.Errorf("%s: same-tenant principal %v", tenant, policy.GetPrincipals())
		}
		if len(policy.GetPrincipals()) != 1 || rbac.GetRules().GetAction().String() != "ALLOW" {
			t.Errorf("%s: RBAC must allow only the one principal: %v", tenant, rbac.GetRules())
		}
	}
}

// TestSidecarHealthPathExempt: the service's health check path needs no
// token (jwt_authn rule without requirement, RBAC permission on that exact
// path); a service without an HTTP health check exempts nothing.
func TestSidecarHealthPathExempt(t *testing.T) {
	cat := load(t, "sidecar")
	jwt, rbac := inboundFilters(t, translateSidecar(t, cat, sidecarNode("tenant-a", "executive")))
	rules := jwt.GetRules()
	if len(rules) != 2 || rules[0].GetMatch().GetPath() != "/healthz" || rules[0].GetRequires() != nil ||
		rules[1].GetMatch().GetPrefix() != "/" || rules[1].GetRequires().GetProviderName() != ContextIssuer {
		t.Errorf("jwt rules %v", rules)
	}
	ex := rbac.GetRules().GetPolicies()[envoy.PolicyExempt]
	if ex == nil || ex.GetPermissions()[0].GetUrlPath().GetPath().GetExact() != "/healthz" {
		t.Errorf("exempt policy %v", ex)
	}

	jwt, rbac = inboundFilters(t, translateSidecar(t, cat, sidecarNode("tenant-a", "analytics")))
	if len(jwt.GetRules()) != 1 || rbac.GetRules().GetPolicies()[envoy.PolicyExempt] != nil {
		t.Errorf("analytics has no health check, nothing may be exempt: %v %v", jwt.GetRules(), rbac.GetRules())
	}
}

// TestSidecarUnknownTenantFailsClosed: a sidecar whose tenant is gone still
// gets a configuration, with no outbound route and the inbound check in place.
func TestSidecarUnknownTenantFailsClosed(t *testing.T) {
	cat := load(t, "sidecar")
	res := translateSidecar(t, cat, sidecarNode("tenant-gone", "executive"))
	out := routeConfigNamed(t, res, SidecarOutboundName)
	if len(out.GetVirtualHosts()) != 1 || out.GetVirtualHosts()[0].GetDomains()[0] != "*" {
		t.Errorf("outbound of an unknown tenant: %v", out.GetVirtualHosts())
	}
	inboundFilters(t, res)
	if _, err := TranslateSidecar(cat, Node{Role: RoleSidecar, Tenant: "tenant-a", Service: "executive"}); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("no app port: %v", err)
	}
}
