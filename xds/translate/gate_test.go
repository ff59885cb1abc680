package translate

import (
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

const healthyTenant = `
---
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata:
  name: healthy
spec:
  pathPrefix: true
  routes: [{name: api, match: {pathPrefix: /api/}, upstream: api}]
  upstreams: [{name: api, endpoints: [{address: 10.0.8.2, port: 80}]}]
`

// A tenant whose config Envoy would refuse at load is stopped by the gate:
// here a method list whose RE2 program is over Envoy's size limit. It is
// reported with the reason, and the others are published as usual; before
// the gate looked at regexes this virtual host went out and was NACKed.
func TestGateRejectsOnlyTheTenantEnvoyWouldRefuse(t *testing.T) {
	cat := catalogFrom(t, "gate.yaml", []byte(`
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata:
  name: methods
spec:
  pathPrefix: true
  routes:
  - name: api
    match:
      pathPrefix: /api/
      methods: [PROPFIND, PROPPATCH, MKCOLLECTION, CHECKOUT, CHECKIN, UNCHECKOUT, MKWORKSPACE, BASELINECONTROL, MKACTIVITY, ORDERPATCH]
    upstream: api
  upstreams: [{name: api, endpoints: [{address: 10.0.8.1, port: 80}]}]
`+healthyTenant))
	res, terrs, err := Translate(cat, Node{Role: RoleEdge})
	if err != nil {
		t.Fatal(err)
	}
	if e := terrs["methods"]; e == nil || !strings.Contains(e.Error(), "program size") {
		t.Fatalf("tenant errors %v, want methods rejected for its regex size", terrs)
	}
	if len(terrs) != 1 {
		t.Fatalf("tenant errors %v, want only methods", terrs)
	}
	if r := edgeRoute(t, res, "api.example.com", "/tenants/healthy/api/x"); r != "healthy/api/path" {
		t.Errorf("healthy tenant lost its route: %v", r)
	}
	if err := Validate(res); err != nil {
		t.Fatal(err)
	}
}

// Header values in a manifest are literal: a '%' reaches Envoy escaped, so
// "50%" neither breaks the virtual host (an unterminated format command)
// nor can "%REQ(authorization)%" copy request data into a header.
func TestHeaderValuesAreLiteral(t *testing.T) {
	cat := catalogFrom(t, "literal.yaml", []byte(`
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
    responseHeaders: {set: {x-discount: "50%", x-echo: "%REQ(authorization)%"}}
  upstreams: [{name: api, endpoints: [{address: 10.0.8.1, port: 80}]}]
`))
	res, terrs, err := Translate(cat, Node{Role: RoleEdge})
	if err != nil || len(terrs) != 0 {
		t.Fatalf("translate: %v %v", err, terrs)
	}
	if err := Validate(res); err != nil {
		t.Fatal(err)
	}
	vh := res.VirtualHosts[0].(*routev3.VirtualHost)
	got := map[string]string{}
	for _, rt := range allRoutes(t, vh) {
		for _, h := range rt.GetResponseHeadersToAdd() {
			got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
	}
	if got["x-discount"] != "50%%" || got["x-echo"] != "%%REQ(authorization)%%" {
		t.Errorf("header values %v, want every %% escaped", got)
	}
}
