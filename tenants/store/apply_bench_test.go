package store

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// BenchmarkApply10000Tenants applies 10,000 tenants, one file each, from
// one directory to an embedded etcd set up as serve's (fsync on,
// BatchTxnOps per transaction), and to one with etcd's default limit
// (an external etcd as installed): the time of `tenant apply -f DIR`
// minus the CLI's start. Run it alone (docs/benchmarks.md):
//
//	go test ./tenants/store/ -run '^$' -bench Apply10000 -benchtime 1x -count 3
func BenchmarkApply10000Tenants(b *testing.B) {
	const n = 10000
	dir := b.TempDir()
	for i := range n {
		id := fmt.Sprintf("tenant-%05d", i)
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(tenantYAML(id, "T"+id)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	for _, limit := range []uint{BatchTxnOps, DefaultTxnOps} {
		b.Run(fmt.Sprintf("max-txn-ops=%d", limit), func(b *testing.B) { benchApply(b, dir, n, limit) })
	}
}

func benchApply(b *testing.B, dir string, n int, maxTxnOps uint) {
	for b.Loop() {
		b.StopTimer()
		s := newServeLikeStore(b, maxTxnOps)
		b.StartTimer()
		start := time.Now()
		docs, err := tenants.Load(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := s.Apply(b.Context(), docs, ApplyOptions{Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Objects) != n || res.Objects[n-1].Outcome != Created {
			b.Fatalf("%d objects, last %+v", len(res.Objects), res.Objects[n-1])
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "tenants/s")
	}
}

// newServeLikeStore starts an embedded etcd with serve's durability
// (etcdtest's skips fsync) and maxTxnOps (serve's: BatchTxnOps, see
// controlplane.embeddedTxnLimits).
func newServeLikeStore(b *testing.B, maxTxnOps uint) *Store {
	b.Helper()
	cfg, err := etcdtest.NewConfig(b.TempDir(), "http://"+freeLoopback(b), "http://"+freeLoopback(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxTxnOps = maxTxnOps
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		b.Fatal("etcd not ready")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdtest.ClientURL(e)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := cli.Close(); err != nil {
			b.Logf("close client: %v", err)
		}
	})
	return New(cli, Options{Prefix: testPrefix, Logger: slog.New(slog.DiscardHandler)})
}

func freeLoopback(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
