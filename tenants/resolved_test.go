package tenants

import (
	"slices"
	"testing"
	"time"
)

// TestResolvedUpstreamAndRetryDefaults: health checks, outlier detection
// and retries get their defaults at admission, in the defaulted spec and,
// typed, in the resolved view; given values win.
func TestResolvedUpstreamAndRetryDefaults(t *testing.T) {
	in := mustDecode[*Tenant](t, `
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: a}
spec:
  routes:
  - {name: r, match: {pathPrefix: /}, upstream: u, retries: {attempts: 2}}
  - {name: s, match: {pathPrefix: /s/}, upstream: v, timeout: 4s, retries: {attempts: 1, on: [5xx], perTryTimeout: 500ms}}
  upstreams:
  - name: u
    endpoints: [{address: 10.0.0.1, port: 80}]
    healthCheck: {tcp: true}
    outlierDetection: {consecutive5xx: 3}
  - name: v
    endpoints: [{address: 10.0.0.2, port: 80}]
    connectTimeout: 3s
    healthCheck: {tcp: true, interval: 5s, timeout: 2s, unhealthyThreshold: 4, healthyThreshold: 1}
    outlierDetection: {interval: 1s, baseEjectionTime: 2s, maxEjectionPercent: 50}
`)
	d := DefaultedTenant(in, BuiltinTiers()["free"])
	res, ok := d.Resolved()
	if !ok {
		t.Fatal("a defaulted tenant has no resolved view")
	}
	if res.Priority != PriorityDefault {
		t.Errorf("priority %q of tier free", res.Priority)
	}

	r, s := d.Spec.Routes[0].Retries, d.Spec.Routes[1].Retries
	if !slices.Equal(r.On, []string{"connect-failure", "refused-stream", "reset"}) || !slices.Equal(s.On, []string{"5xx"}) {
		t.Errorf("retry conditions %v, %v", r.On, s.On)
	}
	if res.Routes[0].PerTryTimeout != 0 || res.Routes[1].PerTryTimeout != 500*time.Millisecond ||
		res.Routes[0].Timeout != DefaultRouteTimeout || res.Routes[1].Timeout != 4*time.Second {
		t.Errorf("resolved routes %+v", res.Routes)
	}
	if in.Spec.Routes[0].Retries.On != nil {
		t.Error("defaulting wrote into the input's retry policy")
	}

	u, v := d.Spec.Upstreams[0], d.Spec.Upstreams[1]
	if hc := u.HealthCheck; hc.Interval != "10s" || hc.Timeout != "1s" || hc.UnhealthyThreshold != 3 || hc.HealthyThreshold != 2 {
		t.Errorf("health check defaults %+v", hc)
	}
	if od := u.OutlierDetection; od.Interval != "10s" || od.BaseEjectionTime != "30s" || od.MaxEjectionPercent != 10 || od.Consecutive5xx != 3 {
		t.Errorf("outlier defaults %+v", od)
	}
	if hc := v.HealthCheck; hc.Interval != "5s" || hc.Timeout != "2s" || hc.UnhealthyThreshold != 4 || hc.HealthyThreshold != 1 {
		t.Errorf("given health check %+v", hc)
	}
	if od := v.OutlierDetection; od.MaxEjectionPercent != 50 {
		t.Errorf("given outlier detection %+v", od)
	}
	want := []ResolvedUpstream{
		{Upstream: &d.Spec.Upstreams[0], ConnectTimeout: DefaultConnectTimeout,
			HealthCheckInterval: 10 * time.Second, HealthCheckTimeout: time.Second,
			OutlierInterval: 10 * time.Second, OutlierBaseEjectionTime: 30 * time.Second},
		{Upstream: &d.Spec.Upstreams[1], ConnectTimeout: 3 * time.Second,
			HealthCheckInterval: 5 * time.Second, HealthCheckTimeout: 2 * time.Second,
			OutlierInterval: time.Second, OutlierBaseEjectionTime: 2 * time.Second},
	}
	if !slices.Equal(res.Upstreams, want) {
		t.Errorf("resolved upstreams\n got %+v\nwant %+v", res.Upstreams, want)
	}
	if in.Spec.Upstreams[0].HealthCheck.Interval != "" || in.Spec.Upstreams[0].OutlierDetection.MaxEjectionPercent != 0 {
		t.Error("defaulting wrote into the input's health check or outlier detection")
	}
}

// TestResolvedBelongsToItsObject: a copy of an admitted object, changed
// or not, has no resolved view, so nothing can translate it with values
// computed for another object.
func TestResolvedBelongsToItsObject(t *testing.T) {
	d := DefaultedTenant(tenant("a", "1", ""), BuiltinTiers()["standard"])
	if _, ok := d.Resolved(); !ok {
		t.Fatal("DefaultedTenant attached no resolved view")
	}
	c := *d
	if _, ok := c.Resolved(); ok {
		t.Error("a copy of a defaulted tenant claims its resolved view")
	}
	if _, ok := tenant("b", "1", "").Resolved(); ok {
		t.Error("a tenant that was never admitted has a resolved view")
	}
	m := DefaultedMeshConfig(nil)
	mc := *m
	if _, ok := mc.Resolved(); ok {
		t.Error("a copy of a defaulted MeshConfig claims its resolved view")
	}
	s := DefaultedSharedService(&SharedService{Metadata: ObjectMeta{Name: "geo"}})
	sc := *s
	if _, ok := sc.Resolved(); ok {
		t.Error("a copy of a defaulted shared service claims its resolved view")
	}
}

// TestDefaultedSharedService: a shared service's connection settings and
// timeout default like a tenant's upstream and route.
func TestDefaultedSharedService(t *testing.T) {
	in := &SharedService{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindSharedService},
		Metadata: ObjectMeta{Name: "geo"},
		Spec: SharedServiceSpec{
			Endpoints:   []Endpoint{{Address: "10.9.0.1", Port: 8080}},
			HealthCheck: &HealthCheck{HTTP: &HTTPHealthCheck{Path: "/healthz"}},
		},
	}
	d := DefaultedSharedService(in)
	res, ok := d.Resolved()
	if !ok {
		t.Fatal("no resolved view")
	}
	u := res.Upstream.Upstream
	if u.Name != "geo" || u.LBPolicy != LBRoundRobin || u.Protocol != ProtocolHTTP1 || u.Endpoints[0].Weight != 1 || u.HealthCheck.UnhealthyThreshold != 3 {
		t.Errorf("upstream view %+v", u)
	}
	if res.Timeout != DefaultRouteTimeout || res.Upstream.ConnectTimeout != DefaultConnectTimeout || res.Upstream.HealthCheckInterval != DefaultHealthCheckInterval {
		t.Errorf("resolved %+v", res)
	}
	if d.Spec.Timeout != "15s" || d.Spec.LBPolicy != LBRoundRobin || d.Spec.Endpoints[0].Weight != 1 {
		t.Errorf("defaulted spec %+v", d.Spec)
	}
	if in.Spec.Timeout != "" || in.Spec.LBPolicy != "" || in.Spec.Endpoints[0].Weight != 0 || in.Spec.HealthCheck.UnhealthyThreshold != 0 {
		t.Errorf("DefaultedSharedService modified its input: %+v", in.Spec)
	}
}

// TestCatalogLendsSharedServices: an unchanged shared service keeps its
// defaulted object from one Catalog to the next (the xds layer compares
// them by pointer); a changed one is defaulted again.
func TestCatalogLendsSharedServices(t *testing.T) {
	geo := &SharedService{Metadata: ObjectMeta{Name: "geo"}, Spec: SharedServiceSpec{Endpoints: []Endpoint{{Address: "10.9.0.1", Port: 80}}}}
	fx := &SharedService{Metadata: ObjectMeta{Name: "fx"}, Spec: SharedServiceSpec{Endpoints: []Endpoint{{Address: "10.9.0.2", Port: 80}}}}
	a := NewCatalog(Input{Revision: 1, SharedServices: []*SharedService{geo, fx}}, nil)
	fx2 := *fx
	fx2.Spec.Timeout = "3s"
	b := NewCatalog(Input{Revision: 2, SharedServices: []*SharedService{&fx2, geo}}, a)
	ga, _ := a.SharedService("geo")
	gb, _ := b.SharedService("geo")
	fa, _ := a.SharedService("fx")
	fb, _ := b.SharedService("fx")
	if ga != gb {
		t.Error("an unchanged shared service got a new object")
	}
	if fa == fb {
		t.Fatal("a changed shared service kept its old object")
	}
	if r, ok := fb.Resolved(); !ok || r.Timeout != 3*time.Second {
		t.Errorf("changed service resolved %+v, %v", r, ok)
	}
	if names := []string{b.SharedServices()[0].Name(), b.SharedServices()[1].Name()}; !slices.Equal(names, []string{"fx", "geo"}) {
		t.Errorf("shared services %v, want sorted by name", names)
	}
}
