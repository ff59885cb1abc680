package translate

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

func clustersByName(res *Resources) map[string]*clusterv3.Cluster {
	out := map[string]*clusterv3.Cluster{}
	for _, r := range res.Clusters {
		c := r.(*clusterv3.Cluster)
		out[c.GetName()] = c
	}
	return out
}

// TestSharedServiceAliasPerTenant: every entitled, active tenant gets its
// own alias of a shared service with its own breakers; the shared virtual
// host picks the alias by the x-tenant-id authz verified.
func TestSharedServiceAliasPerTenant(t *testing.T) {
	cat := load(t, "shared-edge")
	res := translateEdge(t, cat)
	cs := clustersByName(res)
	maxReq := func(name string) uint32 {
		c := cs[name]
		if c == nil {
			return 0
		}
		return c.GetCircuitBreakers().GetThresholds()[0].GetMaxRequests().GetValue()
	}
	// geo caps every tenant at 100; tenant-a's own budget is 50, tenant-b's
	// (tier free) 20: the smaller applies.
	for name, want := range map[string]uint32{"tenant-a.shared.geo": 50, "tenant-b.shared.geo": 20, "tenant-a.shared.models": 50, "tenant-d.shared.geo": 100} {
		if got := maxReq(name); got != want {
			t.Errorf("%s max_requests %d, want %d", name, got, want)
		}
	}
	for _, name := range []string{"tenant-b.shared.models", "tenant-c.shared.geo", "tenant-c.shared.models", "tenant-a.shared.labs"} {
		if cs[name] != nil {
			t.Errorf("%s exists: not entitled or suspended", name)
		}
	}
	if sn := cs["tenant-a.shared.geo"].GetEdsClusterConfig().GetServiceName(); sn != SharedEDSName("geo") ||
		cs["tenant-b.shared.geo"].GetEdsClusterConfig().GetServiceName() != sn {
		t.Errorf("aliases must share one assignment, got %q", sn)
	}

	rc := edgeRouteConfigOf(t, res)
	tree := vhost(rc, SharedVirtualHost).GetMatcher().GetMatcherTree().GetPrefixMatchMap().GetMap()
	geo := tree[SharedPathPrefix("geo")].GetMatcher()
	if geo == nil {
		t.Fatal("no nested matcher under /shared/geo/")
	}
	var hdr matcherv3.HttpRequestHeaderMatchInput
	if err := geo.GetMatcherTree().GetInput().GetTypedConfig().UnmarshalTo(&hdr); err != nil || hdr.GetHeaderName() != TenantHeader {
		t.Errorf("geo matches on %q (%v), want the x-tenant-id authz sets", hdr.GetHeaderName(), err)
	}
	byTenant := geo.GetMatcherTree().GetExactMatchMap().GetMap()
	if len(byTenant) != 3 {
		t.Fatalf("geo routes for %d tenants, want tenant-a, tenant-b and tenant-d", len(byTenant))
	}
	for id, om := range byTenant {
		rs, err := envoy.ActionRoutes(om.GetAction())
		if err != nil {
			t.Fatal(err)
		}
		if got := rs[0].GetRoute().GetCluster(); got != SharedClusterName(id, "geo") {
			t.Errorf("x-tenant-id %s routes to %s", id, got)
		}
		checkSharedAuthz(t, rs[0].GetTypedPerFilterConfig()[envoy.FilterExtAuthz].GetValue(), "geo")
	}
	fb, err := envoy.ActionRoutes(geo.GetOnNoMatch().GetAction())
	if err != nil {
		t.Fatal(err)
	}
	if fb[0].GetDirectResponse().GetStatus() != 403 || fb[0].GetRoute() != nil {
		t.Errorf("fallback must refuse, not route: %v", fb[0])
	}
	checkSharedAuthz(t, fb[0].GetTypedPerFilterConfig()[envoy.FilterExtAuthz].GetValue(), "geo")
	if tree[SharedPathPrefix("labs")].GetAction() == nil {
		t.Error("labs (nobody entitled) must mount only its fallback")
	}
}

func checkSharedAuthz(t *testing.T, raw []byte, name string) {
	t.Helper()
	var pr extauthzv3.ExtAuthzPerRoute
	if err := proto.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	ext := pr.GetCheckSettings().GetContextExtensions()
	if ext[KeySharedService] != name || ext[KeyTenantID] != "" {
		t.Errorf("context extensions %v", ext)
	}
}

// BenchmarkSharedEdge is what shared services add to every slow-path edge
// sync (an aggregate change): one alias cluster and one matcher entry per
// entitled tenant per service, here 1,000 tenants and one service every
// tenant may call. Compare with BenchmarkSidecar: a sidecar is translated
// whole on every change.
func BenchmarkSharedEdge(b *testing.B) {
	in := tenants.Input{Revision: 1, SharedServices: []*tenants.SharedService{{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
		Metadata: tenants.ObjectMeta{Name: "geo"},
		Spec:     tenants.SharedServiceSpec{Endpoints: []tenants.Endpoint{{Address: "10.9.0.1", Port: 8080}}},
	}}}
	for i := 0; i < 1000; i++ {
		in.Tenants = append(in.Tenants, benchTenant(i))
	}
	cat := tenants.NewCatalog(in, nil)
	b.ReportAllocs()
	for b.Loop() {
		se, err := buildSharedEdge(cat, cat.Tenants())
		if err != nil || len(se.clusters) != 1000 {
			b.Fatal(err, len(se.clusters))
		}
	}
}

// BenchmarkSidecar is one sidecar's full translation (validated), done on
// every catalog change for every sidecar group.
func BenchmarkSidecar(b *testing.B) {
	in := tenants.Input{Revision: 1}
	for i := 0; i < 1000; i++ {
		in.Tenants = append(in.Tenants, benchTenant(i))
	}
	cat := tenants.NewCatalog(in, nil)
	n := Node{Role: RoleSidecar, Tenant: "tenant-00001", Service: "executive", AppPort: 8080}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TranslateSidecar(cat, n); err != nil {
			b.Fatal(err)
		}
	}
}

// routeMatches reports whether route r takes a request for path with
// x-tenant-id tenantHdr ("" for none). Only the header matchers the edge
// routes use are understood: an exact x-tenant-id.
func routeMatches(t *testing.T, r *routev3.Route, path, tenantHdr string) bool {
	t.Helper()
	if firstMatch([]*routev3.Route{r}, path) == nil {
		return false
	}
	for _, h := range r.GetMatch().GetHeaders() {
		if h.GetName() != TenantHeader || h.GetStringMatch().GetExact() == "" {
			t.Fatalf("route %s: header matcher %v not emulated", r.GetName(), h)
		}
		if tenantHdr != h.GetStringMatch().GetExact() {
			return false
		}
	}
	return true
}

// edgeRouteFor is the route an edge selects for a request to authority and
// path carrying x-tenant-id tenantHdr: the virtual host by its key, then
// its first route that matches (the shared virtual host: its match tree,
// the nested x-tenant-id matcher of a mount included). Before ext_authz
// tenantHdr is whatever the client sent; after it, the tenant authz
// verified (clear_route_cache re-selects). nil: Envoy's no-route 404.
func edgeRouteFor(t *testing.T, res *Resources, authority, path, tenantHdr string) *routev3.Route {
	t.Helper()
	vh := selectVirtualHost(t, res, authority, path)
	if vh == nil {
		t.Fatalf("%s%s: no virtual host", authority, path)
	}
	routes := vh.GetRoutes()
	if tree := vh.GetMatcher().GetMatcherTree(); tree != nil {
		best := ""
		for k := range tree.GetPrefixMatchMap().GetMap() {
			if strings.HasPrefix(path, k) && len(k) > len(best) {
				best = k
			}
		}
		om := vh.GetMatcher().GetOnNoMatch()
		if best != "" {
			om = tree.GetPrefixMatchMap().GetMap()[best]
		}
		if nested := om.GetMatcher(); nested != nil {
			om = nested.GetOnNoMatch()
			if m, ok := nested.GetMatcherTree().GetExactMatchMap().GetMap()[tenantHdr]; ok {
				om = m
			}
		}
		var err error
		if routes, err = envoy.ActionRoutes(om.GetAction()); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range routes {
		if routeMatches(t, r, path, tenantHdr) {
			return r
		}
	}
	return nil
}

// TestSharedServiceFromTenantHost: a request to a tenant's own host
// selects that tenant's virtual host whatever its path, so the shared
// services must be mounted there too. For a service the tenant may call,
// ext_authz {shared_service} runs whatever the client sent, and the
// verified tenant reaches its own alias; another tenant's caller is
// refused; a service it may not call (or no service at all) is a JSON 404
// — never the tenant's own route on "/".
func TestSharedServiceFromTenantHost(t *testing.T) {
	res := translateEdge(t, load(t, "shared-edge"))
	const host = "tenant-d.example.com"
	type want struct {
		route, cluster string
		status         uint32
		authz          string // shared_service context extension; "" none (authz disabled); "-" a tenant route's
	}
	for _, c := range []struct {
		name, host, path, tenantHdr string
		want                        want
	}{
		{"entitled, after authz", host, "/shared/geo/v1/lookup?q=x", "tenant-d",
			want{SharedRouteName("tenant-d", "geo"), SharedClusterName("tenant-d", "geo"), 0, "geo"}},
		{"entitled, before authz without a hint", host, "/shared/geo/v1/lookup", "",
			want{SharedRouteName("tenant-d", "geo") + "/other-tenant", "", 403, "geo"}},
		{"another tenant's caller on tenant-d's host", host, "/shared/geo/v1/lookup", "tenant-a",
			want{SharedRouteName("tenant-d", "geo") + "/other-tenant", "", 403, "geo"}},
		{"not entitled", host, "/shared/models/v1/predict", "tenant-d",
			want{SharedGuardRouteName("tenant-d"), "", 404, ""}},
		{"no such service", host, "/shared/nothing/x", "tenant-d",
			want{SharedGuardRouteName("tenant-d"), "", 404, ""}},
		{"tenant's own route still", host, "/sharedx/y", "tenant-d",
			want{HostRouteName("tenant-d", "web"), ClusterName("tenant-d", "web"), 0, "-"}},
		{"with the edge port", host + ":10000", "/shared/geo/x", "tenant-d",
			want{SharedRouteName("tenant-d", "geo"), SharedClusterName("tenant-d", "geo"), 0, "geo"}},
		{"second service", "tenant-a.api.example.com", "/shared/models/x", "tenant-a",
			want{SharedRouteName("tenant-a", "models"), SharedClusterName("tenant-a", "models"), 0, "models"}},
		// The shared virtual host's mount is unchanged for other hosts.
		{"shared virtual host", "api.example.com", "/shared/geo/x", "tenant-b",
			want{SharedRouteName("tenant-b", "geo"), SharedClusterName("tenant-b", "geo"), 0, "geo"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := edgeRouteFor(t, res, c.host, c.path, c.tenantHdr)
			if r == nil {
				t.Fatalf("no route (Envoy's own 404, and no authz)")
			}
			if r.GetName() != c.want.route || r.GetRoute().GetCluster() != c.want.cluster || r.GetDirectResponse().GetStatus() != c.want.status {
				t.Fatalf("route %s → cluster %q status %d, want %s → %q %d",
					r.GetName(), r.GetRoute().GetCluster(), r.GetDirectResponse().GetStatus(), c.want.route, c.want.cluster, c.want.status)
			}
			if c.want.cluster != "" && strings.HasPrefix(c.want.cluster, c.tenantHdr+".shared.") && r.GetRoute().GetPrefixRewrite() != "/" {
				t.Errorf("prefix rewrite %q, want /", r.GetRoute().GetPrefixRewrite())
			}
			if c.want.status == 404 && !strings.Contains(r.GetDirectResponse().GetBody().GetInlineString(), `"not_found"`) {
				t.Errorf("404 body %q is not the JSON not_found", r.GetDirectResponse().GetBody().GetInlineString())
			}
			raw := r.GetTypedPerFilterConfig()[envoy.FilterExtAuthz].GetValue()
			switch c.want.authz {
			case "-":
				return
			case "":
				var pr extauthzv3.ExtAuthzPerRoute
				if err := proto.Unmarshal(raw, &pr); err != nil || !pr.GetDisabled() {
					t.Errorf("a JSON 404 needs no authorization: %v %v", &pr, err)
				}
				return
			}
			checkSharedAuthz(t, raw, c.want.authz)
		})
	}
}

// TestSameSharedRoutes: only what tenants' virtual hosts are made of
// (names, timeouts, features) makes the xds layer re-translate tenants.
func TestSameSharedRoutes(t *testing.T) {
	cat := load(t, "shared-edge")
	base := cat.SharedServices()
	edit := func(f func(s *tenants.SharedService)) []*tenants.SharedService {
		out := append([]*tenants.SharedService(nil), base...)
		c := *out[0]
		c.Spec.Features = append([]string(nil), c.Spec.Features...)
		f(&c)
		out[0] = tenants.DefaultedSharedService(&c) // as the next Catalog admits it
		return out
	}
	if !SameSharedRoutes(base, edit(func(s *tenants.SharedService) {
		s.Spec.Endpoints = []tenants.Endpoint{{Address: "10.9.0.2", Port: 8080}}
	})) {
		t.Error("an endpoint change must not re-translate tenants")
	}
	for name, next := range map[string][]*tenants.SharedService{
		"timeout":  edit(func(s *tenants.SharedService) { s.Spec.Timeout = "9s" }),
		"features": edit(func(s *tenants.SharedService) { s.Spec.Features = append(s.Spec.Features, "x") }),
		"removed":  base[1:],
	} {
		if SameSharedRoutes(base, next) {
			t.Errorf("%s: tenants' shared routes change, SameSharedRoutes says not", name)
		}
	}
	// And the virtual host does follow the shared services.
	tt, _ := cat.Tenant("tenant-d")
	a, err := TranslateTenant(cat.Mesh(), base, tt, RoleEdge)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TranslateTenant(cat.Mesh(), nil, tt, RoleEdge)
	if err != nil {
		t.Fatal(err)
	}
	if proto.Equal(a.VirtualHost, b.VirtualHost) {
		t.Error("tenant-d's virtual host ignores the shared services it may call")
	}
}

// localInstance names the local rate limit config instance Envoy uses for
// route r of virtual host vh, as Filter::decodeHeaders resolves it
// (resolveMostSpecificPerFilterConfig: route, virtual host, route
// configuration, else the listener's own). Each instance has its own
// buckets.
func localInstance(t *testing.T, res *Resources, vh *routev3.VirtualHost, r *routev3.Route) string {
	t.Helper()
	switch {
	case r.GetTypedPerFilterConfig()[envoy.FilterLocalRateLimit] != nil:
		return "route " + r.GetName()
	case vh.GetTypedPerFilterConfig()[envoy.FilterLocalRateLimit] != nil:
		return "virtual host " + vh.GetName()
	case edgeRouteConfigOf(t, res).GetTypedPerFilterConfig()[envoy.FilterLocalRateLimit] != nil:
		return "route configuration"
	}
	return "listener"
}

// TestSharedCallsSpendCallersLocalBucket: the README promises that calls to
// a shared service count against the caller's own local limit. So the
// mount routes — in the shared virtual host and in the tenant's own — must
// resolve to the same config instance as the tenant's own routes and name
// the same bucket in it: one token bucket, not a copy of the limit.
func TestSharedCallsSpendCallersLocalBucket(t *testing.T) {
	res := translateEdge(t, load(t, "shared-edge"))
	type use struct{ instance, limit, bucket string }
	at := func(authority, path, tenantHdr string) use {
		t.Helper()
		vh := selectVirtualHost(t, res, authority, path)
		r := edgeRouteFor(t, res, authority, path, tenantHdr)
		if r == nil {
			t.Fatalf("%s%s: no route", authority, path)
		}
		l, b := routeBucket(r)
		return use{localInstance(t, res, vh, r), l, b}
	}
	for _, c := range []struct{ tenant, host, ownPath string }{
		{"tenant-a", "tenant-a.api.example.com", "/api/executive/x"},
		{"tenant-d", "tenant-d.example.com", "/x"},
	} {
		own := at(c.host, c.ownPath, c.tenant)
		if own.bucket != c.tenant {
			t.Fatalf("%s's own route spends bucket %q", c.tenant, own.bucket)
		}
		for name, got := range map[string]use{
			"shared virtual host": at("api.example.com", "/shared/geo/x", c.tenant),
			"tenant's host":       at(c.host, "/shared/geo/x", c.tenant),
		} {
			if got != own {
				t.Errorf("%s: shared call from the %s spends %+v, its own routes %+v", c.tenant, name, got, own)
			}
		}
	}
	if cfg := edgeLocalConfig(t, res); cfg.GetDescriptors() == nil {
		t.Error("the listener's config lists no limits")
	}
}
