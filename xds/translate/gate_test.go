package translate

import (
	"strings"
	"testing"
)

// A tenant whose config Envoy would refuse at load (a lone '%' in a header
// value is an unterminated format command) is stopped by the gate: it is
// reported with the reason, and the others are published as usual. Before
// the deep gate this virtual host went out and Envoy NACKed it.
func TestGateRejectsOnlyTheTenantEnvoyWouldRefuse(t *testing.T) {
	cat := catalogFrom(t, "gate.yaml", []byte(`
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata:
  name: percent
spec:
  pathPrefix: true
  routes:
  - name: api
    match: {pathPrefix: /api/}
    upstream: api
    responseHeaders: {set: {x-discount: "50%"}}
  upstreams: [{name: api, endpoints: [{address: 10.0.8.1, port: 80}]}]
---
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata:
  name: healthy
spec:
  pathPrefix: true
  routes: [{name: api, match: {pathPrefix: /api/}, upstream: api}]
  upstreams: [{name: api, endpoints: [{address: 10.0.8.2, port: 80}]}]
`))
	res, terrs, err := Translate(cat, Node{Role: RoleEdge})
	if err != nil {
		t.Fatal(err)
	}
	if e := terrs["percent"]; e == nil || !strings.Contains(e.Error(), "no valid command") || !strings.Contains(e.Error(), "x-discount") {
		t.Fatalf("tenant errors %v, want percent rejected for its header value", terrs)
	}
	if len(terrs) != 1 {
		t.Fatalf("tenant errors %v, want only percent", terrs)
	}
	if r := edgeRoute(t, res, "api.example.com", "/tenants/healthy/api/x"); r != "healthy/api/path" {
		t.Errorf("healthy tenant lost its route: %v", r)
	}
	if err := Validate(res); err != nil {
		t.Fatal(err)
	}
}
