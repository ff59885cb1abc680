package translate

import (
	"errors"
	"os"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

func load(t testing.TB, name string) *tenants.Catalog {
	t.Helper()
	file := "testdata/in/" + name + ".yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return catalogFrom(t, file, data)
}

func translateEdge(t testing.TB, cat *tenants.Catalog) *Resources {
	t.Helper()
	res, terrs, err := Translate(cat, Node{Role: RoleEdge})
	if err != nil {
		t.Fatal(err)
	}
	if err := terrs.Err(); err != nil {
		t.Fatal(err)
	}
	return res
}

func edgeRouteConfigOf(t testing.TB, res *Resources) *routev3.RouteConfiguration {
	t.Helper()
	for _, r := range res.Routes {
		if rc := r.(*routev3.RouteConfiguration); rc.GetName() == EdgeRouteConfigName {
			return rc
		}
	}
	t.Fatal("no edge-routes")
	return nil
}

func vhost(rc *routev3.RouteConfiguration, name string) *routev3.VirtualHost {
	for _, vh := range rc.GetVirtualHosts() {
		if vh.GetName() == name {
			return vh
		}
	}
	return nil
}

// firstMatch emulates Envoy's first-match route selection for the path
// matchers translation emits (prefix, path, path_separated_prefix), as the
// Envoy route API documents them.
func firstMatch(routes []*routev3.Route, path string) *routev3.Route {
	p, _, _ := strings.Cut(path, "?")
	for _, r := range routes {
		m := r.GetMatch()
		switch {
		case m.GetPath() != "":
			if p == m.GetPath() {
				return r
			}
		case m.GetPathSeparatedPrefix() != "":
			sp := m.GetPathSeparatedPrefix()
			if p == sp || strings.HasPrefix(p, sp+"/") {
				return r
			}
		case strings.HasPrefix(p, m.GetPrefix()):
			return r
		}
	}
	return nil
}

// sharedMatch emulates the shared virtual host's match tree: the longest
// prefix-map key that prefixes the path selects a route list tried in
// order (no match: "" — Envoy's no-route 404), else the on_no_match route.
func sharedMatch(t *testing.T, rc *routev3.RouteConfiguration, path string) string {
	t.Helper()
	vh := vhost(rc, SharedVirtualHost)
	tree := vh.GetMatcher().GetMatcherTree()
	if tree == nil || len(vh.GetRoutes()) > 0 {
		t.Fatal("shared virtual host is not a match tree")
	}
	best := ""
	for k := range tree.GetPrefixMatchMap().GetMap() {
		if strings.HasPrefix(path, k) && len(k) > len(best) {
			best = k
		}
	}
	action := vh.GetMatcher().GetOnNoMatch().GetAction()
	if best != "" {
		action = tree.GetPrefixMatchMap().GetMap()[best].GetAction()
	}
	routes, err := envoy.ActionRoutes(action)
	if err != nil {
		t.Fatal(err)
	}
	return firstMatch(routes, path).GetName()
}

func allRoutes(t *testing.T, vh *routev3.VirtualHost) []*routev3.Route {
	t.Helper()
	rs, err := envoy.TreeRoutes(vh)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestPathTenancyNeverCrossesTenants(t *testing.T) {
	res := translateEdge(t, load(t, "both"))
	for path, want := range map[string]string{
		"/tenants/tenant-a/api/executive/run":  "tenant-a/executive/path",
		"/tenants/tenant-ab/api/executive/run": "tenant-ab/executive/path",
		"/tenants/tenant-ab/api/executive/":    "tenant-ab/executive/path",
		"/tenants/tenant-a":                    CatchAllRouteName,
		"/tenants/tenant-a/":                   MountGuardRouteName("tenant-a"), // tenant-a's, no route: 404
		"/tenants/tenant-a/api/executivex":     MountGuardRouteName("tenant-a"),
		"/tenants/tenant-abc/api/executive/x":  CatchAllRouteName,
		"/api/executive/x":                     CatchAllRouteName,
	} {
		if got := edgeRoute(t, res, "api.example.com", path); got != want {
			t.Errorf("%s matched %q, want %q", path, got, want)
		}
	}
	r := firstMatch(virtualHostOf(res, "tenant-a").GetRoutes(), "/tenants/tenant-a/api/executive/run")
	if rw := r.GetRoute().GetPrefixRewrite(); rw != "/api/executive/" {
		t.Errorf("rewrite %q, want /api/executive/ (the matched /tenants/tenant-a/api/executive/ is replaced)", rw)
	}
	// On a tenant's own host, another tenant's mount is never reached.
	if got := edgeRoute(t, res, "tenant-a.api.example.com", "/tenants/tenant-ab/api/executive/run"); strings.HasPrefix(got, "tenant-ab/") {
		t.Errorf("tenant-a's host served %s", got)
	}
	// path_separated_prefix: /tenants/tenant-b/api never serves /apix.
	res = translateEdge(t, load(t, "path"))
	for path, want := range map[string]string{
		"/tenants/tenant-b/api":       "tenant-b/api/path",
		"/tenants/tenant-b/api/v1":    "tenant-b/api/path",
		"/tenants/tenant-b/api?x=1":   "tenant-b/api/path",
		"/tenants/tenant-b/apix":      "tenant-b/root/path",
		"/tenants/tenant-b/status":    "tenant-b/health/path",
		"/tenants/tenant-b/status/x":  "tenant-b/root/path",
		"/tenants/tenant-bb/api/v1":   CatchAllRouteName,
		"/tenants/tenant-b/anything/": "tenant-b/root/path",
	} {
		if got := edgeRoute(t, res, "api.example.com", path); got != want {
			t.Errorf("%s matched %q, want %q", path, got, want)
		}
	}
}

func TestRoutesCarryTenantContext(t *testing.T) {
	res := translateEdge(t, load(t, "full"))
	vhosts := edgeRouteConfigOf(t, res).GetVirtualHosts()
	for _, r := range res.VirtualHosts {
		vhosts = append(vhosts, r.(*routev3.VirtualHost))
	}
	n := 0
	for _, vh := range vhosts {
		for _, r := range allRoutes(t, vh) {
			var per extauthzv3.ExtAuthzPerRoute
			if err := r.GetTypedPerFilterConfig()[envoy.FilterExtAuthz].UnmarshalTo(&per); err != nil {
				t.Fatalf("route %s: ext_authz per-route config: %v", r.GetName(), err)
			}
			tenant, route, _ := strings.Cut(r.GetName(), "/")
			if r.GetName() == CatchAllRouteName || strings.HasSuffix(r.GetName(), "/"+CatchAllRouteName) || r.GetName() == SharedGuardRouteName(tenant) {
				if !per.GetDisabled() {
					t.Errorf("%s route calls ext_authz", r.GetName())
				}
				continue
			}
			n++
			ext := per.GetCheckSettings().GetContextExtensions()
			route = strings.TrimSuffix(route, "/path")
			if ext[KeyTenantID] != tenant || ext[KeyRoute] != route {
				t.Errorf("route %s: context_extensions %v", r.GetName(), ext)
			}
			// Body buffering exactly on the body-validated route.
			body := per.GetCheckSettings().GetWithRequestBody()
			if validated := route == "executive"; validated != (body != nil) {
				t.Errorf("route %s: with_request_body %v", r.GetName(), body)
			}
			if body != nil && (body.GetMaxRequestBytes() != 65536 || body.GetAllowPartialMessage()) {
				t.Errorf("route %s: buffer settings %v", r.GetName(), body)
			}
		}
	}
	if n != 4 {
		t.Errorf("checked %d tenant routes, want 4 (2 routes × host and path form)", n)
	}
}

func TestSuspendedTenantKeepsRoutes(t *testing.T) {
	cat := load(t, "suspended")
	if tt, _ := cat.Tenant("tenant-s"); tt.Active() {
		t.Fatal("fixture tenant is not suspended")
	}
	res := translateEdge(t, cat)
	if r := edgeRoute(t, res, "tenant-s.example.com", "/api/x"); r != "tenant-s/api" {
		t.Errorf("suspended tenant's host route: %v", r)
	}
	if r := edgeRoute(t, res, "api.example.com", "/tenants/tenant-s/api/x"); r != "tenant-s/api/path" {
		t.Errorf("suspended tenant's path route: %v", r)
	}
}

func TestBrokenTenantOnlyDropsItself(t *testing.T) {
	cat := load(t, "invalid-unknown-upstream")
	res, terrs, err := Translate(cat, Node{Role: RoleEdge})
	if err != nil {
		t.Fatal(err)
	}
	if len(terrs) != 1 || terrs["broken"] == nil || !strings.Contains(terrs["broken"].Error(), "tenant broken:") {
		t.Fatalf("tenant errors %v", terrs)
	}
	if r := edgeRoute(t, res, "api.example.com", "/tenants/healthy/api/x"); r != "healthy/api/path" {
		t.Errorf("healthy tenant lost its route: %v", r)
	}
	if r := edgeRoute(t, res, "api.example.com", "/tenants/broken/api/x"); r != CatchAllRouteName {
		t.Errorf("broken tenant still routed: %v", r)
	}
	if err := Validate(res); err != nil {
		t.Fatal(err)
	}
}

func TestTranslateIsDeterministic(t *testing.T) {
	cat := load(t, "full")
	a, b := translateEdge(t, cat), translateEdge(t, cat)
	for i := range a.Routes {
		x, err := proto.MarshalOptions{Deterministic: true}.Marshal(a.Routes[i])
		if err != nil {
			t.Fatal(err)
		}
		y, err := proto.MarshalOptions{Deterministic: true}.Marshal(b.Routes[i])
		if err != nil {
			t.Fatal(err)
		}
		if string(x) != string(y) {
			t.Fatal("two translations of one Catalog differ")
		}
	}
}

func TestRoles(t *testing.T) {
	cat := load(t, "host")
	if _, _, err := Translate(cat, Node{Role: "bogus"}); !errors.Is(err, ErrUnsupportedRole) {
		t.Errorf("role bogus: %v", err)
	}
	// A sidecar without its workload metadata cannot be translated.
	if _, _, err := Translate(cat, Node{Role: RoleSidecar}); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("sidecar without metadata: %v", err)
	}
	tt, _ := cat.Tenant("tenant-a")
	if _, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tt, RoleSidecar); !errors.Is(err, ErrUnsupportedRole) {
		t.Errorf("TranslateTenant sidecar: %v", err)
	}
}

func TestNodeFromProto(t *testing.T) {
	meta := func(m map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		in   *corev3.Node
		want Node
	}{
		{&corev3.Node{Id: "rl"}, Node{ID: "rl", Role: RoleEdge}},
		{&corev3.Node{Id: "e", Metadata: meta(map[string]any{"role": "edge"})}, Node{ID: "e", Role: RoleEdge}},
		{&corev3.Node{Id: "g", Metadata: meta(map[string]any{"role": "grpc"})}, Node{ID: "g", Role: RoleGRPC}},
		{&corev3.Node{Id: "s", Metadata: meta(map[string]any{"role": "sidecar", "tenant": "tenant-a", "service": "executive", "appPort": 8080})},
			Node{ID: "s", Role: RoleSidecar, Tenant: "tenant-a", Service: "executive", AppPort: 8080}},
		{&corev3.Node{Id: "s2", Metadata: meta(map[string]any{"role": "sidecar", "appPort": "9090"})}, Node{ID: "s2", Role: RoleSidecar, AppPort: 9090}},
	} {
		if got := NodeFromProto(c.in); got != c.want {
			t.Errorf("%v: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

// TestAssembleDropsDomainConflicts: a host claimed by two parts (the
// Catalog prevents it, an out-of-date cached part might not) costs only
// the later tenant, never the route configuration.
func TestAssembleDropsDomainConflicts(t *testing.T) {
	cat := load(t, "both")
	parts := map[string]*TenantResources{}
	for _, tt := range cat.Tenants() {
		p, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tt, RoleEdge)
		if err != nil {
			t.Fatal(err)
		}
		parts[tt.ID()] = p
	}
	clash := *parts["tenant-ab"]
	vh := proto.Clone(clash.VirtualHost).(*routev3.VirtualHost)
	vh.Domains = []string{"*|tenant-a.api.example.com"}
	clash.VirtualHost = vh
	parts["tenant-ab"] = &clash
	res, terrs, err := Assemble(cat, Node{Role: RoleEdge}, parts)
	if err != nil {
		t.Fatal(err)
	}
	if terrs["tenant-ab"] == nil || terrs["tenant-a"] != nil {
		t.Fatalf("tenant errors %v", terrs)
	}
	if err := Validate(res); err != nil {
		t.Fatal(err)
	}
	if virtualHostOf(res, "tenant-ab") != nil {
		t.Error("conflicting tenant kept its virtual host")
	}
}

// TestReservedLookingTenantIDs: tenant ids equal to names tenantmesh uses
// itself must not collide with them (a duplicate descriptor or domain
// would make Envoy reject edge-routes for every tenant).
func TestReservedLookingTenantIDs(t *testing.T) {
	var in tenants.Input
	for _, id := range []string{"not-found", "shared", "tenantmesh"} {
		in.Tenants = append(in.Tenants, &tenants.Tenant{
			Metadata: tenants.ObjectMeta{Name: id},
			Spec: tenants.TenantSpec{
				PathPrefix: true,
				Routes:     []tenants.Route{{Name: "api", Match: tenants.RouteMatch{PathPrefix: "/"}, Upstream: "api"}},
				Upstreams:  []tenants.Upstream{{Name: "api", Endpoints: []tenants.Endpoint{{Address: "10.0.0.1", Port: 80}}}},
			},
		})
	}
	res := translateEdge(t, tenants.NewCatalog(in, nil))
	if err := Validate(res); err != nil {
		t.Fatal(err)
	}
	// Each tenant's routes name its own bucket, the JSON 404 the
	// not-found one; the edge's one config lists each limit once.
	for _, id := range []string{"not-found", "shared", "tenantmesh"} {
		for _, r := range virtualHostOf(res, id).GetRoutes() {
			want := id
			if r.GetDirectResponse() != nil {
				want = LocalBucketNotFound
			}
			if _, b := routeBucket(r); b != want {
				t.Errorf("tenant %s: route %s names bucket %q, want %q", id, r.GetName(), b, want)
			}
		}
	}
	seen := map[string]bool{}
	for _, d := range edgeLocalConfig(t, res).GetDescriptors() {
		v := d.GetEntries()[0].GetValue()
		if seen[v] {
			t.Errorf("duplicate local descriptor %q", v)
		}
		seen[v] = true
	}
	// Their virtual host names cannot collide with the shared one.
	if got := edgeRoute(t, res, "api.example.com", "/tenants/shared/x"); got != "shared/api/path" {
		t.Errorf("tenant \"shared\": %q", got)
	}
}

// TestConcurrentUse: translations share immutable protos (rate limit
// actions, the ADS config source); translating and marshalling from
// several goroutines at once must be race-free (run with -race).
func TestConcurrentUse(t *testing.T) {
	cat := load(t, "full")
	done := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			res, _, err := Translate(cat, Node{Role: RoleEdge})
			if err == nil {
				opts := proto.MarshalOptions{Deterministic: true}
				for _, r := range append(res.Routes, res.Clusters...) {
					if _, err = opts.Marshal(r); err != nil {
						break
					}
				}
			}
			done <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestSameAggregateInputs: a change to nothing but a tenant's local limit
// must still count as an aggregate change (the buckets live in edge-routes).
func TestSameAggregateInputs(t *testing.T) {
	cat := load(t, "full")
	tt, _ := cat.Tenant("tenant-a")
	a, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tt, RoleEdge)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tt, RoleEdge)
	if err != nil {
		t.Fatal(err)
	}
	if !SameAggregateInputs(a, b) {
		t.Fatal("two translations of one tenant differ")
	}
	changed := *tt
	rl := *changed.Spec.RateLimits
	rl.Local = &tenants.LocalRateLimit{Requests: 7, Per: tenants.UnitSecond}
	changed.Spec.RateLimits = &rl
	tier, _ := cat.Tier(tt.Spec.Tier)
	c, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tenants.DefaultedTenant(&changed, tier), RoleEdge)
	if err != nil {
		t.Fatal(err)
	}
	if SameAggregateInputs(a, c) {
		t.Fatal("a local limit change is invisible to the aggregate comparison")
	}
}
