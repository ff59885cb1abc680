package translate

import (
	"testing"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
)

// grpcHealthManifest is a tenant with one gRPC upstream of each health
// check kind that applies to it, and one HTTP upstream for contrast.
const grpcHealthManifest = `apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec: {controlPlaneAdmin: tenantmesh-admin.mesh.svc:9102}
---
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-g}
spec:
  hosts: [tenant-g.example.com]
  routes:
    - {name: orders, match: {pathPrefix: /tenantg.v1.Orders/}, upstream: orders}
    - {name: legacy, match: {pathPrefix: /tenantg.v1.Legacy/}, upstream: legacy}
    - {name: web, match: {pathPrefix: /}, upstream: web}
  upstreams:
    - name: orders
      protocol: grpc
      endpoints: [{address: 10.0.7.1, port: 15006}]
      healthCheck: {grpc: {service: tenantg.v1.Orders}}
    - name: legacy
      protocol: grpc
      endpoints: [{address: 10.0.7.2, port: 15006}]
      healthCheck: {http: {path: /healthz, host: legacy.tenant-g}}
    - name: web
      endpoints: [{address: 10.0.7.3, port: 15006}]
      healthCheck: {http: {path: /healthz}}
`

// TestGRPCUpstreamsGetGRPCHealthChecks: Envoy's HTTP checker sends a plain
// GET, which a gRPC server refuses with 415, so every host of a gRPC
// upstream went unhealthy. A gRPC upstream gets grpc_health_check
// (grpc.health.v1, health_checker_impl.cc) whether the manifest says grpc
// or http; an HTTP upstream keeps its HTTP check.
func TestGRPCUpstreamsGetGRPCHealthChecks(t *testing.T) {
	cat := catalogFrom(t, "grpc-health.yaml", []byte(grpcHealthManifest))
	cs := clustersByName(translateEdge(t, cat))
	for _, c := range []struct {
		cluster, service, authority string
	}{
		{"tenant-g.orders", "tenantg.v1.Orders", ""},
		{"tenant-g.legacy", "", "legacy.tenant-g"}, // http on grpc: whole server, host as authority
	} {
		hcs := cs[c.cluster].GetHealthChecks()
		if len(hcs) != 1 || hcs[0].GetGrpcHealthCheck() == nil || hcs[0].GetHttpHealthCheck() != nil {
			t.Fatalf("%s health checks %v: want one grpc_health_check", c.cluster, hcs)
		}
		g := hcs[0].GetGrpcHealthCheck()
		if g.GetServiceName() != c.service || g.GetAuthority() != c.authority {
			t.Errorf("%s grpc_health_check %v: want service %q, authority %q", c.cluster, g, c.service, c.authority)
		}
		if err := validate.Deep(cs[c.cluster]); err != nil {
			t.Errorf("%s: %v", c.cluster, err)
		}
	}
	if hc := cs["tenant-g.web"].GetHealthChecks(); len(hc) != 1 || hc[0].GetHttpHealthCheck().GetPath() != "/healthz" {
		t.Errorf("HTTP upstream health checks %v: want its http_health_check on /healthz", hc)
	}

	// The golden input's gRPC upstream with an http check, likewise.
	if hc := clustersByName(translateEdge(t, load(t, "upstreams")))["tenant-c.grpc"].GetHealthChecks(); len(hc) != 1 || hc[0].GetGrpcHealthCheck() == nil {
		t.Errorf("tenant-c.grpc health checks %v: want grpc_health_check", hc)
	}
}

// TestSidecarExemptsGRPCHealthCheck: the edge probes a sidecar-fronted
// gRPC service on /grpc.health.v1.Health/Check, without a context token;
// the inbound sidecar must let exactly that path through, not the HTTP
// path the manifest may name.
func TestSidecarExemptsGRPCHealthCheck(t *testing.T) {
	cat := catalogFrom(t, "grpc-health.yaml", []byte(grpcHealthManifest))
	for _, svc := range []string{"orders", "legacy"} {
		jwt, rbac := inboundFilters(t, translateSidecar(t, cat, sidecarNode("tenant-g", svc)))
		if r := jwt.GetRules(); len(r) != 2 || r[0].GetMatch().GetPath() != envoy.GRPCHealthCheckPath || r[0].GetRequires() != nil {
			t.Errorf("%s: jwt rules %v: want %s exempt first", svc, r, envoy.GRPCHealthCheckPath)
		}
		ex := rbac.GetRules().GetPolicies()[envoy.PolicyExempt]
		if len(ex.GetPermissions()) != 1 || ex.GetPermissions()[0].GetUrlPath().GetPath().GetExact() != envoy.GRPCHealthCheckPath {
			t.Errorf("%s: exempt policy %v", svc, ex)
		}
	}
	if jwt, _ := inboundFilters(t, translateSidecar(t, cat, sidecarNode("tenant-g", "web"))); jwt.GetRules()[0].GetMatch().GetPath() != "/healthz" {
		t.Errorf("HTTP service: jwt rules %v: want /healthz exempt", jwt.GetRules())
	}
}
