//go:build authzload

package authz

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// TestLoadHarness is the load harness behind docs/benchmarks.md. It
// is behind the authzload build tag so that `go test` never runs it:
//
//	go test -tags authzload -run TestLoadHarness -v -timeout 30m ./authz/
//
// Every scenario and the do-nothing stub are served over real gRPC on
// loopback in this process, the load generator too. For each of ROUNDS
// rounds (default 3) it measures, per scenario:
//   - closed-loop throughput with 8 and 32 concurrent callers (CLOSED_SECS, default 3 s);
//   - open-loop latency at 1,000 and 2,000 req/s (OPEN_SECS, default 5 s), measured
//     from each request's scheduled send time so a stall is not hidden
//     (no coordinated omission).
//
// ONLY=cached-jwt,apikey restricts the scenarios. It prints the medians over the rounds and the ratio to the stub
// measured just before (see the pairing note below).
func TestLoadHarness(t *testing.T) {
	rounds := envInt("ROUNDS", 3)
	closedFor := time.Duration(envInt("CLOSED_SECS", 3)) * time.Second
	openFor := time.Duration(envInt("OPEN_SECS", 5)) * time.Second
	f := newBenchFixture(t)
	scs := f.scenarios()
	if only := os.Getenv("ONLY"); only != "" { // e.g. ONLY=cached-jwt,apikey
		scs = slices.DeleteFunc(scs, func(sc scenario) bool {
			return sc.name != "stub" && !slices.Contains(strings.Split(only, ","), sc.name)
		})
	}
	stub := scs[0]
	clients := map[string]authv3.AuthorizationClient{}
	for _, sc := range scs {
		clients[sc.name] = serveGRPC(t, func(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, sc.srv) })
		warm(clients[sc.name], sc)
	}
	// Other work on this shared machine comes and goes; each scenario is
	// therefore measured right after the stub, as a pair, and the ratio is
	// taken within the pair. Reported: medians over rounds of the value and
	// of the per-pair ratio.
	type key struct{ sc, metric string }
	vals := map[key][]float64{}
	ratios := map[key][]float64{}
	var metrics []string
	record := func(sc, m string, v, stubV float64) {
		metrics = appendOnce(metrics, m)
		vals[key{sc, m}] = append(vals[key{sc, m}], v)
		vals[key{"stub", m}] = append(vals[key{"stub", m}], stubV)
		if stubV > 0 {
			ratios[key{sc, m}] = append(ratios[key{sc, m}], v/stubV)
		}
	}
	for r := range rounds {
		for _, sc := range scs[1:] {
			for _, conc := range []int{8, 32} {
				base, baseCPU := closedLoop(clients["stub"], stub, conc, closedFor)
				v, cpu := closedLoop(clients[sc.name], sc, conc, closedFor)
				record(sc.name, fmt.Sprintf("closed c%d checks/s", conc), v, base)
				// CPU per check of the whole process (load generator, gRPC
				// both ways, decision) is far less disturbed by other work
				// on the machine than wall-clock throughput; NumCPU divided
				// by it is the throughput this machine would give if idle.
				record(sc.name, fmt.Sprintf("closed c%d CPU µs/check", conc), cpu, baseCPU)
				record(sc.name, fmt.Sprintf("closed c%d capacity checks/s (NumCPU/CPU per check)", conc),
					float64(runtime.NumCPU())*1e6/cpu, float64(runtime.NumCPU())*1e6/baseCPU)
			}
			for _, rate := range []int{1000, 2000} {
				b50, b99, bAch := openLoop(clients["stub"], stub, rate, openFor)
				p50, p99, ach := openLoop(clients[sc.name], sc, rate, openFor)
				record(sc.name, fmt.Sprintf("open %d/s p50 ms", rate), p50, b50)
				record(sc.name, fmt.Sprintf("open %d/s p99 ms", rate), p99, b99)
				record(sc.name, fmt.Sprintf("open %d/s achieved", rate), ach, bAch)
			}
		}
		t.Logf("round %d/%d done", r+1, rounds)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "GOMAXPROCS=%d NumCPU=%d %s rounds=%d closed=%s open=%s\n\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), rounds, closedFor, openFor)
	fmt.Fprintf(&b, "| metric | stub |")
	for _, sc := range scs[1:] {
		fmt.Fprintf(&b, " %s (ratio to its stub) |", sc.name)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(scs)-1) + "\n")
	for _, m := range metrics {
		fmt.Fprintf(&b, "| %s | %s |", m, num(median(vals[key{"stub", m}])))
		for _, sc := range scs[1:] {
			fmt.Fprintf(&b, " %s (%.2f×) |", num(median(vals[key{sc.name, m}])), median(ratios[key{sc.name, m}]))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nall pairs (scenario value / stub value just before it):\n")
	for _, m := range metrics {
		for _, sc := range scs[1:] {
			fmt.Fprintf(&b, "  %-15s %-22s", sc.name, m)
			for i, r := range ratios[key{sc.name, m}] {
				fmt.Fprintf(&b, " %s/%s=%.2f", num(vals[key{sc.name, m}][i]), num(pairStub(vals[key{"stub", m}], len(scs)-1, i, sc.name, scs)), r)
			}
			b.WriteString("\n")
		}
	}
	fmt.Println(b.String())
	if out := os.Getenv("LOAD_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// pairStub finds the stub value recorded with the i-th value of scenario
// name: stub values are appended once per (round, scenario) in scenario order.
func pairStub(stubVals []float64, perRound, i int, name string, scs []scenario) float64 {
	idx := 0
	for j, sc := range scs[1:] {
		if sc.name == name {
			idx = j
		}
	}
	k := i*perRound + idx
	if k < len(stubVals) {
		return stubVals[k]
	}
	return 0
}

func warm(cl authv3.AuthorizationClient, sc scenario) {
	for range 200 {
		if _, err := cl.Check(context.Background(), sc.next()); err != nil {
			panic(err)
		}
	}
}

// closedLoop runs conc callers back to back for d and returns checks/s
// and the process CPU time (user+system) per check in µs.
func closedLoop(cl authv3.AuthorizationClient, sc scenario, conc int, d time.Duration) (float64, float64) {
	cpu0 := processCPU()
	var n atomic.Int64
	var failed atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := cl.Check(context.Background(), sc.next())
				if err != nil || resp.GetStatus().GetCode() != 0 {
					failed.Add(1)
					continue
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		panic(fmt.Sprintf("%s: %d checks failed", sc.name, failed.Load()))
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	return float64(n.Load()) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(n.Load())
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openLoop sends rate req/s for d regardless of responses and returns the
// p50/p99 latency in ms (from the scheduled send time) and the achieved
// completion rate.
func openLoop(cl authv3.AuthorizationClient, sc scenario, rate int, d time.Duration) (p50, p99, achieved float64) {
	total := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, total)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Go(func() {
			resp, err := cl.Check(context.Background(), sc.next())
			if err != nil || resp.GetStatus().GetCode() != 0 {
				panic(fmt.Sprintf("%s: check failed: %v", sc.name, err))
			}
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(total-1))]) / 1e6 }
	return ms(0.50), ms(0.99), float64(total) / elapsed.Seconds()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func num(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v <= 0 {
		return def
	}
	return v
}
