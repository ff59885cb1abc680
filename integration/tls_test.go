package integration

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/xds"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

const trustDomain = "integration.local"

// testCA is a dev CA (the library behind `tenantmesh certs`) whose
// certificates a test writes into directories of its own.
type testCA struct {
	t  *testing.T
	ca *devca.CA
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := devca.NewCA(trustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, ca: ca}
}

// issue writes tls.crt, tls.key and ca.crt for r into a new directory.
func (c *testCA) issue(r devca.Request) string {
	c.t.Helper()
	dir := c.t.TempDir()
	if _, err := c.ca.IssueTo(dir, r); err != nil {
		c.t.Fatal(err)
	}
	return dir
}

func (c *testCA) client(id identity.ID) *bootstrap.TLSFiles {
	dir := c.issue(devca.Request{ID: id, Usage: devca.ClientAuth})
	return &bootstrap.TLSFiles{CA: filepath.Join(dir, devca.CACertFile), Cert: filepath.Join(dir, devca.CertFile), Key: filepath.Join(dir, devca.KeyFile)}
}

// mtlsConfig serves xDS over mutual TLS with a server certificate for
// 127.0.0.1 (the address every client here dials).
func (c *testCA) mtlsConfig() controlplane.Config {
	dir := c.issue(devca.Request{ID: identity.ControlPlane(trustDomain), IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	return controlplane.Config{XDSTLS: tlsconfig.Files{
		Cert: filepath.Join(dir, devca.CertFile), Key: filepath.Join(dir, devca.KeyFile), ClientCA: filepath.Join(dir, devca.CACertFile),
	}, XDSTrustDomain: trustDomain}
}

// TestProxylessGRPCClientOverMutualTLS is TestProxylessGRPCClientFollowsTenantRoutes
// over mutual TLS: grpc-go's xDS client, from the bootstrap `envoy
// bootstrap --role grpc --xds-tls-*` generates, with a certificate of
// `tenantmesh certs grpc`.
func TestProxylessGRPCClientOverMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	p := startPlane(t, ca.mtlsConfig())
	portA, portB := backend(t, "backend-a"), backend(t, "backend-b")
	p.apply(t, grpcTenantYAML("tenant-a", portA), grpcTenantYAML("tenant-b", portB))

	boot, err := bootstrap.GRPC(bootstrap.Options{NodeID: "grpc-client-1", Role: translate.RoleGRPC, XDSAddress: p.cfg.XDSListen,
		TLS: ca.client(identity.GRPC(trustDomain, "grpc-client-1"))})
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := xds.NewXDSResolverWithConfigForTesting(boot)
	if err != nil {
		t.Fatalf("xds resolver: %v", err)
	}
	// The data path to the backends stays plaintext: only the xDS channel
	// is under test.
	conn, err := grpc.NewClient("xds:///tenant-a.svc", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	servedBy(t, conn, "backend-a")
	p.apply(t, grpcTenantYAML("tenant-a", portB))
	servedBy(t, conn, "backend-b")
}

// TestGlobalQuotasOverMutualTLS: envoyproxy/ratelimit takes its limits
// from an xDS server that requires a client certificate, configured by the
// environment `envoy bootstrap --role ratelimit --xds-tls-*` prints.
func TestGlobalQuotasOverMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	p := startPlane(t, ca.mtlsConfig())
	p.apply(t, tenantYAML("tenant-a", 9001, limitedTenant))

	env, err := bootstrap.Ratelimit(bootstrap.Options{NodeID: "ratelimit-test", Role: bootstrap.RoleRatelimit, XDSAddress: p.cfg.XDSListen,
		TLS: ca.client(identity.Ratelimit(trustDomain, "ratelimit-test"))})
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range env {
		extra = append(extra, e.Name+"="+e.Value)
	}
	redis := ratelimittest.StartRedis(t)
	rls := ratelimittest.StartRatelimit(t, p.cfg.XDSListen, redis.Addr, extra...)
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
	da := descriptor("tenant-a", "", "minute")
	used := l.waitLimit(da, 5)
	l.expect(da, 5-used, rlsv3.RateLimitResponse_OK)
	l.expect(da, 1, rlsv3.RateLimitResponse_OVER_LIMIT)
}
