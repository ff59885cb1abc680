package translate

import (
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// edgeLocalConfig decodes the local_ratelimit filter config of edge-http.
func edgeLocalConfig(t testing.TB, res *Resources) *localratelimitv3.LocalRateLimit {
	t.Helper()
	for _, r := range res.Listeners {
		l := r.(*listenerv3.Listener)
		if l.GetName() != EdgeListenerName {
			continue
		}
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		for _, f := range hcm.GetHttpFilters() {
			if f.GetName() == envoy.FilterLocalRateLimit {
				var cfg localratelimitv3.LocalRateLimit
				if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
					t.Fatal(err)
				}
				return &cfg
			}
		}
	}
	t.Fatal("edge-http has no local_ratelimit filter")
	return nil
}

// routeBucket is the (local_limit, local_bucket) a route names.
func routeBucket(r *routev3.Route) (limit, bucket string) {
	f := r.GetMetadata().GetFilterMetadata()[MetadataNamespace].GetFields()
	return f[KeyLocalLimit].GetStringValue(), f[KeyLocalBucket].GetStringValue()
}

// edgeVirtualHosts are edge-routes' inline virtual hosts and the VHDS ones.
func edgeVirtualHosts(t *testing.T, res *Resources) []*routev3.VirtualHost {
	t.Helper()
	vhosts := append([]*routev3.VirtualHost(nil), edgeRouteConfigOf(t, res).GetVirtualHosts()...)
	for _, r := range res.VirtualHosts {
		vhosts = append(vhosts, r.(*routev3.VirtualHost))
	}
	return vhosts
}

// noRouteTableLocalConfig fails if edge-routes, a virtual host or a route
// carries a local rate limit config: Envoy rebuilds those, with full
// buckets, on every route table update (localratelimit.go).
func noRouteTableLocalConfig(t *testing.T, res *Resources) {
	t.Helper()
	if _, ok := edgeRouteConfigOf(t, res).GetTypedPerFilterConfig()[envoy.FilterLocalRateLimit]; ok {
		t.Error("edge-routes carries a local rate limit config")
	}
	for _, vh := range edgeVirtualHosts(t, res) {
		if _, ok := vh.GetTypedPerFilterConfig()[envoy.FilterLocalRateLimit]; ok {
			t.Errorf("virtual host %s carries a local rate limit config", vh.GetName())
		}
		for _, r := range allRoutes(t, vh) {
			if _, ok := r.GetTypedPerFilterConfig()[envoy.FilterLocalRateLimit]; ok {
				t.Errorf("route %s carries a local rate limit config", r.GetName())
			}
		}
	}
}

// TestLocalBucketsOnListener: the edge's one local rate limit config is
// edge-http's filter config, with a wildcard descriptor per limit; every
// tenant route, host and path form, names (limit, bucket) — one Envoy
// bucket per pair — and both forms of a route name the same pair.
func TestLocalBucketsOnListener(t *testing.T) {
	res := translateEdge(t, load(t, "full"))
	noRouteTableLocalConfig(t, res)
	cfg := edgeLocalConfig(t, res)
	if cfg.GetAlwaysConsumeDefaultTokenBucket().GetValue() || cfg.GetAlwaysConsumeDefaultTokenBucket() == nil {
		t.Error("tenant traffic would also drain the default bucket")
	}
	if cfg.GetMaxDynamicDescriptors().GetValue() != envoy.MaxDynamicLocalBuckets {
		t.Errorf("max_dynamic_descriptors %v: the default 20 would evict tenants' buckets", cfg.GetMaxDynamicDescriptors())
	}
	acts := cfg.GetRateLimits()[0].GetActions()
	if len(cfg.GetRateLimits()) != 1 || len(acts) != 2 || acts[0].GetMetadata().GetDescriptorKey() != KeyLocalLimit ||
		acts[1].GetMetadata().GetDescriptorKey() != KeyLocalBucket || acts[1].GetMetadata().GetSource() != routev3.RateLimit_Action_MetaData_ROUTE_ENTRY {
		t.Fatalf("rate_limits %v", cfg.GetRateLimits())
	}
	limits := map[string]*localratelimitv3.LocalRateLimit{}
	for _, d := range cfg.GetDescriptors() {
		e := d.GetEntries()
		if len(e) != 2 || e[0].GetKey() != KeyLocalLimit || e[1].GetKey() != KeyLocalBucket || e[1].GetValue() != "" {
			t.Fatalf("descriptor %v is not (local_limit=<limit>, local_bucket=*)", e)
		}
		if limits[e[0].GetValue()] != nil {
			t.Errorf("limit %s listed twice (Envoy rejects duplicate descriptors)", e[0].GetValue())
		}
		limits[e[0].GetValue()] = &localratelimitv3.LocalRateLimit{TokenBucket: d.GetTokenBucket()}
	}
	exec := &tenants.LocalRateLimit{Requests: 100, Per: tenants.UnitSecond, Burst: 20}
	ent := &tenants.LocalRateLimit{Requests: 500, Per: tenants.UnitSecond, Burst: 50}
	want := map[string][2]string{
		"tenant-a/executive": {LocalLimitName(exec), "tenant-a/executive"}, "tenant-a/executive/path": {LocalLimitName(exec), "tenant-a/executive"},
		"tenant-a/reports": {LocalLimitName(ent), "tenant-a"}, "tenant-a/reports/path": {LocalLimitName(ent), "tenant-a"},
		CatchAllRouteName:               {LocalLimitName(&notFoundLimit), LocalBucketNotFound},
		MountGuardRouteName("tenant-a"): {LocalLimitName(&notFoundLimit), LocalBucketNotFound},
	}
	checked := 0
	for _, vh := range edgeVirtualHosts(t, res) {
		for _, r := range allRoutes(t, vh) {
			w, ok := want[r.GetName()]
			if !ok {
				continue
			}
			checked++
			l, b := routeBucket(r)
			if l != w[0] || b != w[1] || limits[l] == nil {
				t.Errorf("route %s: (%q, %q), want %v (listed: %v)", r.GetName(), l, b, w, limits[l] != nil)
			}
		}
	}
	if checked != len(want) {
		t.Errorf("checked %d routes, want %d", checked, len(want))
	}
	tb, err := tokenBucket(exec)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(limits[LocalLimitName(exec)].GetTokenBucket(), tb) {
		t.Errorf("limit %s: token bucket %v, want %v", LocalLimitName(exec), limits[LocalLimitName(exec)].GetTokenBucket(), tb)
	}
}

// TestLocalBucketsSurviveOtherTenantsChanges: Envoy keeps the buckets of
// the listener's filter config until the listener changes, and rebuilds
// every per-filter config with the route table. So a tenant's change —
// routes, or its limit moved to one that exists — must leave the listener
// as it was and the other tenant's (limit, bucket) as it was; only a
// limit nobody had before changes the listener (docs/ratelimit-local.md).
func TestLocalBucketsSurviveOtherTenantsChanges(t *testing.T) {
	cat := load(t, "tiers")
	before := translateEdge(t, cat)
	noRouteTableLocalConfig(t, before)
	ids := cat.TenantIDs()
	if len(ids) < 2 {
		t.Fatal("fixture needs two tenants")
	}
	changedID, otherID := ids[0], ids[1]
	buckets := func(res *Resources, id string) map[string][2]string {
		out := map[string][2]string{}
		for _, r := range virtualHostOf(res, id).GetRoutes() {
			l, b := routeBucket(r)
			out[r.GetName()] = [2]string{l, b}
		}
		return out
	}
	tr := func(mutate func(*tenants.Tenant)) *Resources {
		t.Helper()
		in := tenants.Input{Revision: 2, Tiers: cat.Tiers(), SharedServices: cat.SharedServices()}
		for _, x := range cat.Tenants() {
			if x.ID() == changedID {
				c := *x
				c.Spec.Routes = append([]tenants.Route(nil), x.Spec.Routes...)
				mutate(&c)
				x = &c
			}
			in.Tenants = append(in.Tenants, x)
		}
		next := tenants.NewCatalog(in, nil)
		if len(next.Rejected()) > 0 {
			t.Fatal(next.Rejected())
		}
		return translateEdge(t, next)
	}
	standard := tenants.BuiltinTiers()["standard"].Spec.RateLimits.Local
	for name, c := range map[string]struct {
		mutate        func(*tenants.Tenant)
		listenerMoves bool
	}{
		"routes": {func(x *tenants.Tenant) {
			x.Spec.Routes = append(x.Spec.Routes, tenants.Route{Name: "extra", Match: tenants.RouteMatch{PathPrefix: "/extra/"}, Upstream: x.Spec.Routes[0].Upstream})
		}, false},
		"limit to a tier's": {func(x *tenants.Tenant) {
			x.Spec.RateLimits = &tenants.RateLimits{Local: standard, Global: x.Spec.RateLimits.Global}
		}, false},
		"a limit nobody had": {func(x *tenants.Tenant) {
			x.Spec.RateLimits = &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: 77, Per: tenants.UnitSecond}, Global: x.Spec.RateLimits.Global}
		}, true},
	} {
		t.Run(name, func(t *testing.T) {
			after := tr(c.mutate)
			noRouteTableLocalConfig(t, after)
			if moved := !proto.Equal(edgeLocalConfig(t, before), edgeLocalConfig(t, after)); moved != c.listenerMoves {
				t.Errorf("listener's local config changed: %v, want %v", moved, c.listenerMoves)
			}
			b, a := buckets(before, otherID), buckets(after, otherID)
			if len(a) == 0 || len(a) != len(b) {
				t.Fatalf("tenant %s routes %v → %v", otherID, b, a)
			}
			for r, x := range b {
				if a[r] != x {
					t.Errorf("tenant %s route %s: bucket %v → %v", otherID, r, x, a[r])
				}
			}
		})
	}
}
