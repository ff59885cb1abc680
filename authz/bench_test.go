package authz

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// The benchmarks compare Check with a do-nothing Authorization server
// (stubServer) over the same real gRPC loopback transport, so the figures
// show what our decision costs on top of what ext_authz costs anyway.
// docs/benchmarks.md has the commands and the results; the open
// loop harness is in load_test.go (build tag authzload).

// stubServer answers OK at once: the baseline.
type stubServer struct {
	authv3.UnimplementedAuthorizationServer
}

func (stubServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
}

// benchFixture holds servers and request generators for one scenario set.
type benchFixture struct {
	w        *world
	cached   *Server // default decision cache
	uncached *Server // cache smaller than the token pool: every check verifies RS256
	pool     []string
}

// uncachedPool is larger than uncachedCache, cycled round-robin, so an
// LRU of uncachedCache entries never hits.
const (
	uncachedPool  = 1024
	uncachedCache = 128
)

func newBenchFixture(tb testing.TB) *benchFixture {
	tb.Helper()
	w := newWorld(tb)
	quiet := slog.New(slog.DiscardHandler)
	mk := func(size int) *Server {
		s, err := New(Options{Logger: quiet, DecisionCacheSize: size})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(s.Close)
		s.Update(w.cat)
		return s
	}
	f := &benchFixture{w: w, cached: mk(0), uncached: mk(uncachedCache), pool: make([]string, uncachedPool)}
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := g; i < uncachedPool; i += 2 {
				c := claimsA()
				c["sub"] = fmt.Sprintf("user-%d", i)
				c["exp"] = time.Now().Add(time.Hour).Unix()
				f.pool[i] = sign(tb, jwt.SigningMethodRS256, "a1", w.k.rsaA, c)
			}
		})
	}
	wg.Wait()
	return f
}

// envoyHeaders are the headers Envoy typically forwards, so that request
// size and header-map handling are realistic.
func envoyHeaders(extra map[string]string) map[string]string {
	h := map[string]string{
		":authority": "tenant-a.api.example.com", ":method": "GET", ":path": "/api/orders/42", ":scheme": "https",
		"user-agent": "bench/1.0", "accept": "application/json", "x-forwarded-proto": "https",
		"x-forwarded-for": "203.0.113.7", "x-request-id": "6f1c3e9a-7d2b-4a4e-9a65-3b1f0c7d2e11", "x-envoy-expected-rq-timeout-ms": "15000",
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// scenario is one kind of request against one server.
type scenario struct {
	name string
	srv  authv3.AuthorizationServer
	next func() *authv3.CheckRequest // safe for concurrent use
}

func (f *benchFixture) scenarios() []scenario {
	orders := func(h map[string]string) *authv3.CheckRequest {
		return creq{tenant: "tenant-a", route: "orders", path: "/api/orders/42", host: "tenant-a.api.example.com", headers: envoyHeaders(h)}.proto()
	}
	cachedReq := orders(bearer(f.w.tokenA(claimsA())))
	keyReq := orders(map[string]string{"x-api-key": f.w.apiKey["a"]})
	uncachedReqs := make([]*authv3.CheckRequest, len(f.pool))
	for i, tok := range f.pool {
		uncachedReqs[i] = orders(bearer(tok))
	}
	var n atomic.Uint64
	return []scenario{
		{"stub", stubServer{}, func() *authv3.CheckRequest { return cachedReq }},
		{"cached-jwt", f.cached, func() *authv3.CheckRequest { return cachedReq }},
		{"uncached-rs256", f.uncached, func() *authv3.CheckRequest { return uncachedReqs[n.Add(1)%uint64(len(uncachedReqs))] }},
		{"apikey", f.cached, func() *authv3.CheckRequest { return keyReq }},
	}
}

// BenchmarkCheckDirect measures the decision alone (no gRPC): the number
// to profile and to watch allocations on.
func BenchmarkCheckDirect(b *testing.B) {
	f := newBenchFixture(b)
	for _, sc := range f.scenarios() {
		b.Run(sc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := sc.srv.Check(ctx, sc.next())
					if err != nil || resp.GetStatus().GetCode() != 0 {
						b.Fatalf("not allowed: %v %v", resp, err)
					}
				}
			})
		})
	}
}

// BenchmarkCheckGRPC is the closed loop over real gRPC on loopback at 8 and
// 32 concurrent callers (b.SetParallelism × GOMAXPROCS goroutines; run with
// -cpu 2 on the 2-core machine). Compare checks/s with the stub's.
func BenchmarkCheckGRPC(b *testing.B) {
	f := newBenchFixture(b)
	for _, sc := range f.scenarios() {
		cl := serveGRPC(b, func(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, sc.srv) })
		for _, conc := range []int{8, 32} {
			b.Run(fmt.Sprintf("%s/c%d", sc.name, conc), func(b *testing.B) {
				procs := max(1, testingProcs())
				b.SetParallelism(max(1, conc/procs))
				ctx := context.Background()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := cl.Check(ctx, sc.next())
						if err != nil || resp.GetStatus().GetCode() != 0 {
							b.Fatalf("not allowed: %v %v", resp, err)
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
			})
		}
	}
}
