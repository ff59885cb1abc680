package integration

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

// scaleTenant is a tenant of the benchmark fleet: 3 routes, 2 upstreams.
func scaleTenant(i, port int, timeout string) *tenants.Tenant {
	id := fmt.Sprintf("t%05d", i)
	up := func(name string, p int) tenants.Upstream {
		return tenants.Upstream{Name: name, Endpoints: []tenants.Endpoint{{Address: "10.0." + strconv.Itoa(i%250) + "." + strconv.Itoa(1+i%200), Port: p}},
			HealthCheck:    &tenants.HealthCheck{HTTP: &tenants.HTTPHealthCheck{Path: "/healthz"}, Interval: "10s", Timeout: "1s"},
			CircuitBreaker: &tenants.CircuitBreaker{MaxRequests: 100}}
	}
	return &tenants.Tenant{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
		Metadata: tenants.ObjectMeta{Name: id},
		Spec: tenants.TenantSpec{
			Tier: "standard", Hosts: []string{id + ".api.example.com"}, PathPrefix: true,
			Auth: tenants.AuthSpec{APIKeys: true},
			Routes: []tenants.Route{
				{Name: "orders", Match: tenants.RouteMatch{PathPrefix: "/orders/", Methods: []string{"GET", "POST"}}, Upstream: "api", Timeout: tenants.Duration(timeout)},
				{Name: "users", Match: tenants.RouteMatch{PathPrefix: "/users/"}, Upstream: "api", Roles: []string{"admin"}},
				{Name: "reports", Match: tenants.RouteMatch{PathPrefix: "/reports/"}, Upstream: "reports",
					RateLimit: &tenants.RateLimits{Global: []tenants.GlobalRateLimit{{Requests: 10, Per: tenants.UnitMinute}}}},
			},
			Upstreams: []tenants.Upstream{up("api", port), up("reports", 9000)},
		},
	}
}

// putTenants writes n tenants straight into etcd (as `tenant apply`
// would store them), 100 per transaction (etcd's default limit is 128
// operations), so the import is a few hundred watch events, not n.
func putTenants(b *testing.B, p *plane, n int) {
	b.Helper()
	const batch = 100
	for lo := 0; lo < n; lo += batch {
		var ops []clientv3.Op
		for i := lo; i < min(lo+batch, n); i++ {
			t := scaleTenant(i, 8080, "15s")
			v, err := tenants.EncodeJSON(t)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, clientv3.OpPut(store.DefaultPrefix+"tenants/"+t.ID(), string(v)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := p.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			b.Fatalf("put tenants %d..: %v", lo, err)
		}
	}
}

func rssMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Logf("no /proc/self/status: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				return 0
			}
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkScaleTenantChange: 10,000 tenants (3 routes, 2 upstreams each)
// in etcd, `serve` on it, one delta ADS edge client subscribed to
// everything. Then 200 times: change one tenant in etcd, measure the time
// until the client holds the change, and the bytes it was sent for it.
// Two kinds of change: an endpoint (EDS only) and a route timeout (the
// edge route configuration). Run with -benchtime=1x:
//
//	go test -run='^$' -bench=ScaleTenantChange -benchtime=1x -timeout=30m ./integration/
func BenchmarkScaleTenantChange(b *testing.B) {
	n := 10000
	if v := os.Getenv("TENANTMESH_SCALE_TENANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("TENANTMESH_SCALE_TENANTS: %v", err)
		}
	}
	changes := 200
	p := startPlaneB(b)
	start := time.Now()
	putTenants(b, p, n)
	b.Logf("wrote %d tenants to etcd in %v", n, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := adsclient.Open(ctx, p.xdsCon, node("edge-bench", "edge"), true)
	if err != nil {
		b.Fatal(err)
	}
	subscribeEdge(b, c)
	updates := make(chan *adsclient.Update, 1024)
	go func() {
		for {
			u, err := c.Recv()
			if err != nil {
				close(updates)
				return
			}
			if err := c.Ack(u); err != nil {
				return
			}
			updates <- u
		}
	}()
	// Initial state: wait until every tenant's endpoints and virtual host
	// arrived (waiting for endpoints only let the initial virtual hosts
	// arrive during the first measured change and count as its bytes).
	start = time.Now()
	seen, seenVH, initialBytes := 0, 0, 0
	for seen < 2*n || seenVH < n {
		select {
		case u := <-updates:
			initialBytes += u.Bytes
			switch u.TypeURL {
			case resourcev3.EndpointType:
				seen += len(u.Resources)
			case resourcev3.VirtualHostType:
				seenVH += len(u.Resources)
			}
		case <-time.After(5 * time.Minute):
			b.Fatalf("initial configuration incomplete: %d of %d endpoints, %d of %d virtual hosts", seen, 2*n, seenVH, n)
		}
	}
	// Anything still in flight belongs to the initial state too.
	for quiet := false; !quiet; {
		select {
		case u := <-updates:
			initialBytes += u.Bytes
		case <-time.After(time.Second):
			quiet = true
		}
	}
	b.Logf("initial configuration: %d endpoints, %d virtual hosts, %.1f MiB sent, %v after the last put; process RSS %.0f MiB",
		seen, seenVH, float64(initialBytes)/(1<<20), time.Since(start).Round(time.Millisecond), rssMiB(b))
	b.ReportMetric(rssMiB(b), "rss-MiB")
	b.ReportMetric(liveHeapMiB(b, "initial"), "live-heap-MiB")

	measure := func(kind string, change func(i int) *tenants.Tenant, done func(u *adsclient.Update, id string) bool) {
		lat := make([]time.Duration, 0, changes)
		var bytes []int
		for i := 0; i < changes; i++ {
			t := change(i)
			v, err := tenants.EncodeJSON(t)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = p.cli.Put(pctx, store.DefaultPrefix+"tenants/"+t.ID(), string(v))
			pcancel()
			if err != nil {
				b.Fatal(err)
			}
			sent := 0
		wait:
			for {
				select {
				case u := <-updates:
					sent += u.Bytes
					if done(u, t.ID()) {
						break wait
					}
				case <-time.After(30 * time.Second):
					b.Fatalf("%s change %d of %s never arrived", kind, i, t.ID())
				}
			}
			lat = append(lat, time.Since(t0))
			// Collect anything else sent for this change (other types).
			for quiet := false; !quiet; {
				select {
				case u := <-updates:
					sent += u.Bytes
				case <-time.After(50 * time.Millisecond):
					quiet = true
				}
			}
			bytes = append(bytes, sent)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		sort.Ints(bytes)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		b.Logf("%s change, %d tenants, %d changes: p50 %v p99 %v; bytes to the client per change: median %.1f KiB, max %.1f KiB",
			kind, n, changes, p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond),
			float64(bytes[len(bytes)/2])/1024, float64(bytes[len(bytes)-1])/1024)
		b.ReportMetric(float64(p50.Microseconds())/1000, kind+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, kind+"-p99-ms")
		b.ReportMetric(float64(bytes[len(bytes)/2])/1024, kind+"-KiB/change")
	}

	b.ResetTimer()
	measure("endpoint", func(i int) *tenants.Tenant {
		return scaleTenant((i*37)%n, 9100+i, "15s")
	}, func(u *adsclient.Update, id string) bool {
		_, ok := u.Resources[id+".api"]
		return u.TypeURL == resourcev3.EndpointType && ok
	})
	measure("route", func(i int) *tenants.Tenant {
		return scaleTenant((i*53)%n, 8080, strconv.Itoa(16+i)+"s")
	}, func(u *adsclient.Update, id string) bool {
		// The tenant's routes are its VHDS virtual host.
		_, ok := u.Resources["edge-routes/"+id]
		return u.TypeURL == resourcev3.VirtualHostType && ok
	})
	b.ReportMetric(rssMiB(b), "rss-after-MiB")
	b.ReportMetric(liveHeapMiB(b, "after"), "live-heap-after-MiB")
}

// liveHeapMiB is the Go heap still reachable after a collection — RSS also
// counts what the runtime has not returned to the OS yet. With
// TENANTMESH_SCALE_HEAPPROFILE=<prefix> it writes <prefix>-<when>.pprof.
func liveHeapMiB(b *testing.B, when string) float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if prefix := os.Getenv("TENANTMESH_SCALE_HEAPPROFILE"); prefix != "" {
		f, err := os.Create(prefix + "-" + when + ".pprof")
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(m.HeapAlloc) / (1 << 20)
}

// startPlaneB is startPlane for benchmarks.
func startPlaneB(b *testing.B) *plane {
	b.Helper()
	return startPlane(b, configWithoutPreload())
}
