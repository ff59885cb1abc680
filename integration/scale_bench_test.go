package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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

// BenchmarkScaleTenantChange: 10,000 tenants (3 routes, 2 upstreams each)
// in etcd, `serve` on it, one delta ADS edge client subscribed to
// everything. Then 200 times: change one tenant in etcd, measure the time
// until the client holds the change, and the bytes it was sent for it.
// Two kinds of change: an endpoint (EDS only) and a route timeout (the
// edge route configuration). serve runs as a child process, so its memory
// is measured alone (TENANTMESH_SCALE_INPROCESS=1: in this one, where
// go test -cpuprofile covers both sides). Run with -benchtime=1x:
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
	var p *plane
	if os.Getenv("TENANTMESH_SCALE_INPROCESS") != "" {
		p = startPlane(b, configWithoutPreload())
	} else {
		p = startServeProcess(b)
	}
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
	b.Logf("initial configuration: %d endpoints, %d virtual hosts, %.1f MiB sent, %v after the last put",
		seen, seenVH, float64(initialBytes)/(1<<20), time.Since(start).Round(time.Millisecond))
	reportMemory(b, p, "initial")

	measure := func(kind string, change func(i int) *tenants.Tenant, done func(u *adsclient.Update, id string) bool) {
		lat := make([]time.Duration, 0, changes)
		puts := make([]time.Duration, 0, changes) // etcd's own share: the Put round trip
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
			puts = append(puts, time.Since(t0))
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
		sort.Slice(puts, func(i, j int) bool { return puts[i] < puts[j] })
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		b.Logf("%s change, %d tenants, %d changes: p50 %v p99 %v (etcd Put alone: p50 %v p99 %v); bytes to the client per change: median %.1f KiB, max %.1f KiB",
			kind, n, changes, p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond),
			puts[len(puts)/2].Round(100*time.Microsecond), puts[len(puts)*99/100].Round(100*time.Microsecond),
			float64(bytes[len(bytes)/2])/1024, float64(bytes[len(bytes)-1])/1024)
		b.ReportMetric(float64(p50.Microseconds())/1000, kind+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, kind+"-p99-ms")
		b.ReportMetric(float64(bytes[len(bytes)/2])/1024, kind+"-KiB/change")
	}

	b.ResetTimer()
	profiled := profileServe(b, p)
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
	<-profiled
	reportMemory(b, p, "after")
}

// profileServe, with TENANTMESH_SCALE_CPUPROFILE=<file> and serve as a
// child process, records 30 s of serve's CPU profile (the measured
// changes take about that long) into <file>; the channel closes when done.
func profileServe(b *testing.B, p *plane) <-chan struct{} {
	done := make(chan struct{})
	path := os.Getenv("TENANTMESH_SCALE_CPUPROFILE")
	if path == "" || p.pid == 0 {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + p.cfg.AdminPrivateListen + "/debug/pprof/profile?seconds=30")
		if err != nil {
			b.Errorf("cpu profile: %v", err)
			return
		}
		body, err := io.ReadAll(resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.WriteFile(path, body, 0o644)
		}
		if err != nil {
			b.Errorf("cpu profile: %v", err)
		}
	}()
	return done
}

// reportMemory reports serve's resident memory now and at its peak
// (VmHWM), and its Go heap right after a forced collection — RSS also
// counts what the runtime has not returned to the OS yet. With serve as a
// child process these are that process's alone (its embedded etcd
// included, as `make run` runs it); with TENANTMESH_SCALE_INPROCESS they
// also include the ADS client holding the whole configuration and the
// benchmark. TENANTMESH_SCALE_HEAPPROFILE=<prefix> also
// writes <prefix>-<when>.pprof.
func reportMemory(b *testing.B, p *plane, when string) {
	b.Helper()
	var heap []byte
	var live float64
	if p.pid == 0 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		live = float64(m.HeapAlloc) / (1 << 20)
		var buf bytes.Buffer
		if err := pprof.WriteHeapProfile(&buf); err != nil {
			b.Fatal(err)
		}
		heap = buf.Bytes()
	} else {
		// ?gc=1 collects before profiling, so the heap figure read from
		// /metrics just after is the live heap (give or take the scrape).
		heap = adminGet(b, p, "/debug/pprof/heap?gc=1")
		live = metricValue(b, adminGet(b, p, "/metrics"), "go_memstats_heap_alloc_bytes") / (1 << 20)
	}
	if prefix := os.Getenv("TENANTMESH_SCALE_HEAPPROFILE"); prefix != "" {
		if err := os.WriteFile(prefix+"-"+when+".pprof", heap, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	rss, peak := procStatusMiB(b, p.pid, "VmRSS"), procStatusMiB(b, p.pid, "VmHWM")
	b.Logf("memory %s (pid %d, 0 = this process): RSS %.0f MiB, peak RSS %.0f MiB, live heap %.0f MiB", when, p.pid, rss, peak, live)
	b.ReportMetric(rss, "rss-"+when+"-MiB")
	b.ReportMetric(peak, "peak-rss-"+when+"-MiB")
	b.ReportMetric(live, "live-heap-"+when+"-MiB")
}

// adminGet is the body of GET path on serve's private admin listener
// (/metrics, /debug/pprof/).
func adminGet(b *testing.B, p *plane, path string) []byte {
	b.Helper()
	resp, err := http.Get("http://" + p.cfg.AdminPrivateListen + path)
	if err != nil {
		b.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %s %v", path, resp.Status, err)
	}
	return body
}

// metricValue is an unlabelled sample from a Prometheus text exposition.
func metricValue(b *testing.B, exposition []byte, name string) float64 {
	b.Helper()
	for _, line := range strings.Split(string(exposition), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	b.Fatalf("no %s in /metrics", name)
	return 0
}
