// Package integration runs tenantmesh end to end on one machine: `serve`
// (controlplane.Run) on embedded etcd, real gRPC on loopback, the ADS
// client, grpc-go's xDS client, envoyproxy/ratelimit with Redis.
package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// plane is one running `serve`.
type plane struct {
	cfg    controlplane.Config
	cli    *clientv3.Client
	store  *store.Store
	stop   func() error
	xdsCon *grpc.ClientConn
	pid    int // of a serve child process; 0 when serve runs in this one
}

func addr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(ratelimittest.FreePort(t))
}

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("TENANTMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startPlane runs controlplane.Run on embedded etcd in dataDir. cfg
// fields that are set are kept (so a restart reuses the same addresses).
func startPlane(t testing.TB, cfg controlplane.Config) *plane {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	for _, p := range []*string{&cfg.EmbeddedEtcdListen, &cfg.EmbeddedEtcdPeerListen, &cfg.XDSListen, &cfg.AuthzListen, &cfg.AdminListen, &cfg.AdminPrivateListen} {
		if *p == "" {
			*p = addr(t)
		}
	}
	cfg.Logger = logger(t)
	cfg.ShutdownTimeout = 3 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controlplane.Run(ctx, cfg) }()
	p := &plane{cfg: cfg}
	var once sync.Once
	var stopErr error
	p.stop = func() error {
		once.Do(func() { stopErr = waitStopped(cancel, done) })
		return stopErr
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
	waitTCP(t, cfg.XDSListen)
	p.connect(t)
	return p
}

// connect opens the test's etcd client, store and xDS connection to a
// running serve at p.cfg's addresses.
func (p *plane) connect(t testing.TB) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.cfg.EmbeddedEtcdListen}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() {
		if err := cli.Close(); err != nil {
			t.Logf("close etcd client: %v", err)
		}
	})
	p.cli = cli
	// The test writes as the CLI would: with the key serve signs with.
	key, err := store.LoadAuditKey(filepath.Join(p.cfg.DataDir, store.AuditKeyFileName))
	if err != nil {
		t.Fatalf("serve's audit key: %v", err)
	}
	p.store = store.New(cli, store.Options{Logger: logger(t), Audit: store.AuditOptions{Key: key}})
	conn, err := grpc.NewClient(p.cfg.XDSListen, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close xds conn: %v", err)
		}
	})
	p.xdsCon = conn
}

func waitTCP(t testing.TB, a string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
		if err == nil {
			if err := c.Close(); err != nil {
				t.Logf("close probe: %v", err)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", a)
}

// apply decodes YAML manifests and applies them through the store, as the
// CLI does.
func (p *plane) apply(t *testing.T, manifests ...string) {
	t.Helper()
	docs, err := tenants.Decode("test.yaml", []byte(strings.Join(manifests, "\n---\n")))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.store.Apply(ctx, docs, store.ApplyOptions{Actor: "test"}); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (p *plane) delete(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.store.Delete(ctx, tenants.KindTenant, id, "test"); err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
}

// tenantYAML is a small tenant with one route and one upstream at port.
func tenantYAML(id string, port int, extra string) string {
	return `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: ` + id + `}
spec:
  tier: standard
  hosts: [` + id + `.example.com]
  pathPrefix: true
  auth: {apiKeys: true}
  routes:
    - {name: api, match: {pathPrefix: /api/}, upstream: svc}
  upstreams:
    - name: svc
      endpoints: [{address: 127.0.0.1, port: ` + strconv.Itoa(port) + `}]
` + extra
}

func node(id, role string) *corev3.Node {
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue(role)}}}
}

func configWithoutPreload() controlplane.Config { return controlplane.Config{} }

// waitStopped cancels a running serve and waits for Run to return; a
// hang is reported with every goroutine's stack.
func waitStopped(cancel context.CancelFunc, done <-chan error) error {
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		var b strings.Builder
		if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
			return fmt.Errorf("serve did not stop within 30s (no goroutine dump: %v)", err)
		}
		return fmt.Errorf("serve did not stop within 30s; goroutines:\n%s", b.String())
	}
}
