package envoy

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// TestGRPCHealthCheck: a gRPC check is grpc_health_check (never an HTTP
// GET, which a gRPC server answers 415) with the service and authority
// given, and is refused on a cluster that does not speak HTTP/2.
func TestGRPCHealthCheck(t *testing.T) {
	o := ClusterOptions{
		Name: "t.orders", LBPolicy: clusterv3.Cluster_ROUND_ROBIN, HTTP2: true, Discovery: EDS,
		HealthCheck: &HealthCheck{GRPC: true, GRPCService: "t.v1.Orders", HTTPHost: "orders.t", HTTPPath: "/ignored",
			Interval: 7 * time.Second, Timeout: time.Second, UnhealthyThreshold: 4, HealthyThreshold: 2},
	}
	c, err := Cluster(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	hc := c.GetHealthChecks()
	if len(hc) != 1 || hc[0].GetHttpHealthCheck() != nil {
		t.Fatalf("health checks %v: want one gRPC check, no HTTP check", hc)
	}
	if g := hc[0].GetGrpcHealthCheck(); g.GetServiceName() != "t.v1.Orders" || g.GetAuthority() != "orders.t" {
		t.Errorf("grpc_health_check %v", g)
	}
	if hc[0].GetInterval().AsDuration() != 7*time.Second || hc[0].GetUnhealthyThreshold().GetValue() != 4 {
		t.Errorf("health check timings not as given: %v", hc[0])
	}
	o.HTTP2 = false
	if _, err := Cluster(o); err == nil {
		t.Error("gRPC health check on an HTTP/1 cluster accepted")
	}
}

// TestHealthCheckAsGiven: the builder applies no defaults (tenants does,
// at admission); a check without timings is what Envoy refuses, since
// health_check.proto requires them.
func TestHealthCheckAsGiven(t *testing.T) {
	o := ClusterOptions{Name: "t.u", LBPolicy: clusterv3.Cluster_ROUND_ROBIN, Discovery: EDS, HealthCheck: &HealthCheck{}}
	c, err := Cluster(o)
	if err != nil {
		t.Fatal(err)
	}
	if hc := c.GetHealthChecks()[0]; hc.GetInterval() != nil || hc.GetHealthyThreshold() != nil {
		t.Errorf("health check got values nobody gave: %v", hc)
	}
	if err := c.ValidateAll(); err == nil {
		t.Error("a health check without interval, timeout and thresholds validates")
	}
}
