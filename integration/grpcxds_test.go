package integration

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"
)

// backend is a real gRPC server that answers health checks for its own
// name only, so a client can tell which backend served it.
func backend(t *testing.T, name string) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	go func() {
		if err := srv.Serve(lis); err != nil {
			t.Logf("backend %s: %v", name, err)
		}
	}()
	t.Cleanup(srv.Stop)
	return lis.Addr().(*net.TCPAddr).Port
}

func grpcTenantYAML(id string, port int) string {
	return `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: ` + id + `}
spec:
  routes:
    - {name: rpc, match: {pathPrefix: /}, upstream: svc}
  upstreams:
    - name: svc
      protocol: grpc
      endpoints: [{address: 127.0.0.1, port: ` + strconv.Itoa(port) + `}]
`
}

// servedBy asks over conn which backend answers, retrying while the
// client is still resolving.
func servedBy(t *testing.T, conn *grpc.ClientConn, want string) {
	t.Helper()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: want})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never served the call: last error %v", want, lastErr)
}

// TestProxylessGRPCClientFollowsTenantRoutes uses grpc-go's own xDS client
// as an independent, strict consumer of the grpc role's listeners, routes,
// clusters and endpoints.
func TestProxylessGRPCClientFollowsTenantRoutes(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	portA, portB := backend(t, "backend-a"), backend(t, "backend-b")
	p.apply(t, grpcTenantYAML("tenant-a", portA), grpcTenantYAML("tenant-b", portB))

	bootstrap := `{
	  "xds_servers": [{"server_uri": "` + p.cfg.XDSListen + `", "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
	  "node": {"id": "grpc-client-1", "metadata": {"role": "grpc"}}
	}`
	resolver, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatalf("xds resolver: %v", err)
	}
	dial := func(target string) *grpc.ClientConn {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
		if err != nil {
			t.Fatalf("dial %s: %v", target, err)
		}
		t.Cleanup(func() {
			if err := conn.Close(); err != nil {
				t.Logf("close %s: %v", target, err)
			}
		})
		return conn
	}
	connA, connB := dial("xds:///tenant-a.svc"), dial("xds:///tenant-b.svc")
	servedBy(t, connA, "backend-a")
	servedBy(t, connB, "backend-b")

	// Cross-check: tenant-a's channel does not reach tenant-b's backend.
	hc := healthpb.NewHealthClient(connA)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "backend-b"}); err == nil {
		t.Fatalf("tenant-a's channel reached backend-b (%v)", resp.GetStatus())
	}

	// An endpoint change in etcd moves tenant-a's traffic.
	p.apply(t, grpcTenantYAML("tenant-a", portB))
	servedBy(t, connA, "backend-b")
}
