package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	ratelimitfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

// descriptor is what Envoy's rate limit filter sends for a tenant route
// with the actions tenantmesh generates: tenant_id from ext_authz's
// dynamic metadata, then (for a route override) the route, then the window.
func descriptor(tenant, route, window string) *ratelimitcommonv3.RateLimitDescriptor {
	e := []*ratelimitcommonv3.RateLimitDescriptor_Entry{{Key: "tenant_id", Value: tenant}}
	if route != "" {
		e = append(e, &ratelimitcommonv3.RateLimitDescriptor_Entry{Key: "route", Value: route})
	}
	e = append(e, &ratelimitcommonv3.RateLimitDescriptor_Entry{Key: "window", Value: window})
	return &ratelimitcommonv3.RateLimitDescriptor{Entries: e}
}

type limiter struct {
	t  *testing.T
	rl rlsv3.RateLimitServiceClient
}

func (l *limiter) call(d *ratelimitcommonv3.RateLimitDescriptor) (*rlsv3.RateLimitResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return l.rl.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "tenantmesh", Descriptors: []*ratelimitcommonv3.RateLimitDescriptor{d}, HitsAddend: 1})
}

// limitOf reports the limit the service applies to d (0: none).
func limitOf(r *rlsv3.RateLimitResponse) uint32 {
	if len(r.GetStatuses()) == 0 {
		return 0
	}
	return r.GetStatuses()[0].GetCurrentLimit().GetRequestsPerUnit()
}

// waitLimit calls until the service applies want to d (config arrived over
// xDS). It returns the calls counted against that limit: only the last
// one, since calls without a matching limit are not counted.
func (l *limiter) waitLimit(d *ratelimitcommonv3.RateLimitDescriptor, want uint32) int {
	l.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *rlsv3.RateLimitResponse
	var lastErr error
	for time.Now().Before(deadline) {
		r, err := l.call(d)
		if err == nil && limitOf(r) == want {
			return 1
		}
		last, lastErr = r, err
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Fatalf("limit for %v never became %d: last %v, %v", d.GetEntries(), want, last, lastErr)
	return 0
}

// expect makes n calls and checks each code.
func (l *limiter) expect(d *ratelimitcommonv3.RateLimitDescriptor, n int, want rlsv3.RateLimitResponse_Code) {
	l.t.Helper()
	for i := 0; i < n; i++ {
		r, err := l.call(d)
		if err != nil {
			l.t.Fatalf("call %d for %v: %v", i+1, d.GetEntries(), err)
		}
		if r.GetOverallCode() != want {
			l.t.Fatalf("call %d for %v: %v, want %v", i+1, d.GetEntries(), r.GetOverallCode(), want)
		}
	}
}

const limitedTenant = `  rateLimits:
    global: [{requests: 5, per: minute}]
`

// TestGlobalQuotasWithEnvoyproxyRatelimit runs the real limiter: our xDS
// server configures envoyproxy/ratelimit, which counts in a real Redis.
func TestGlobalQuotasWithEnvoyproxyRatelimit(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	routeOverride := `  rateLimits:
    global: [{requests: 5, per: minute}]
`
	a := tenantYAML("tenant-a", 9001, routeOverride)
	// A second route with its own, smaller quota.
	a = replaceOnce(t, a, "    - {name: api, match: {pathPrefix: /api/}, upstream: svc}\n",
		"    - {name: api, match: {pathPrefix: /api/}, upstream: svc}\n"+
			"    - {name: export, match: {pathPrefix: /export/}, upstream: svc, rateLimit: {global: [{requests: 2, per: minute}]}}\n")
	p.apply(t, a, tenantYAML("tenant-b", 9002, limitedTenant))

	redis := ratelimittest.StartRedis(t)
	rls := ratelimittest.StartRatelimit(t, p.cfg.XDSListen, redis.Addr)
	conn, err := grpc.NewClient(rls.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	l := &limiter{t: t, rl: rlsv3.NewRateLimitServiceClient(conn)}

	// tenant-a: 5 per minute, counted across every Envoy.
	da := descriptor("tenant-a", "", "minute")
	used := l.waitLimit(da, 5)
	l.expect(da, 5-used, rlsv3.RateLimitResponse_OK)
	l.expect(da, 2, rlsv3.RateLimitResponse_OVER_LIMIT)

	// tenant-b has its own counter.
	db := descriptor("tenant-b", "", "minute")
	used = l.waitLimit(db, 5)
	l.expect(db, 5-used, rlsv3.RateLimitResponse_OK)

	// The route override counts separately with its own limit.
	de := descriptor("tenant-a", "export", "minute")
	used = l.waitLimit(de, 2)
	l.expect(de, 2-used, rlsv3.RateLimitResponse_OK)
	l.expect(de, 1, rlsv3.RateLimitResponse_OVER_LIMIT)

	// Change tenant-a's quota with the store (as the CLI does): the new limit,
	// on a new window, is enforced without restarting anything.
	p.apply(t, tenantYAML("tenant-a", 9001, "  rateLimits:\n    global: [{requests: 3, per: hour}]\n"))
	dh := descriptor("tenant-a", "", "hour")
	used = l.waitLimit(dh, 3)
	l.expect(dh, 3-used, rlsv3.RateLimitResponse_OK)
	l.expect(dh, 1, rlsv3.RateLimitResponse_OVER_LIMIT)

	// Delete tenant-a: its descriptors are gone from the limiter's config.
	p.delete(t, "tenant-a")
	l.waitLimit(dh, 0)
	l.waitLimit(db, 5) // tenant-b untouched

	// Redis down: the limiter cannot answer. Envoy's ratelimit filter then
	// applies failure_mode_deny, which our edge listener sets from MeshConfig.
	redis.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := l.call(db)
		if err != nil {
			t.Logf("with Redis down the limiter answers: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("limiter still answers OK with Redis down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if deny := edgeFailureModeDeny(t, p); deny {
		t.Fatal("default MeshConfig must let traffic through when the limiter fails (failure_mode_deny false)")
	}
	p.apply(t, `apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
  rateLimit: {failureModeDeny: true}
`)
	waitFor(t, "failure_mode_deny true on edge-http", func() bool { return edgeFailureModeDeny(t, p) })
}

// edgeFailureModeDeny reads the rate limit filter of the edge listener.
func edgeFailureModeDeny(t *testing.T, p *plane) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := adsclient.Fetch(ctx, p.xdsCon, node("probe", "edge"), true, []string{resourcev3.ListenerType}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := snap[resourcev3.ListenerType]["edge-http"].(*listenerv3.Listener)
	if !ok {
		t.Fatal("no edge-http listener")
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() != "envoy.filters.http.ratelimit" {
			continue
		}
		rl := &ratelimitfilterv3.RateLimit{}
		if err := f.GetTypedConfig().UnmarshalTo(rl); err != nil {
			t.Fatal(err)
		}
		return rl.GetFailureModeDeny()
	}
	t.Fatal("edge-http has no envoy.filters.http.ratelimit filter")
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := strings.Index(s, old)
	if i < 0 {
		t.Fatalf("%q not in manifest", old)
	}
	return s[:i] + new + s[i+len(old):]
}
