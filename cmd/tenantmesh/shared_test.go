package main

import (
	"strings"
	"testing"
)

const geoManifest = `apiVersion: tenantmesh.io/v1alpha1
kind: SharedService
metadata: {name: geo}
spec:
  endpoints: [{address: 10.9.0.1, port: 8080}]
  features: [maps]
  perTenant: {circuitBreaker: {maxRequests: 100}}
`

func TestSharedApplyGetListDelete(t *testing.T) {
	c := newCLI(t)
	if r := c.run(geoManifest, "shared", "apply", "-f", "-"); r.code != 0 || r.stdout != "sharedservice/geo created\n" {
		t.Fatalf("shared apply: %+v", r)
	}
	list := c.ok("shared", "list")
	if !strings.Contains(list, "geo") || !strings.Contains(list, "10.9.0.1:8080") || !strings.Contains(list, "features maps") || !strings.Contains(list, "100") {
		t.Errorf("list:\n%s", list)
	}
	if y := c.ok("shared", "get", "geo", "-o", "yaml"); !strings.Contains(y, "kind: SharedService") || !strings.Contains(y, "resourceVersion:") {
		t.Errorf("get -o yaml:\n%s", y)
	}
	// Validation names the field; nothing is written.
	bad := strings.Replace(geoManifest, "port: 8080", "port: 0", 1)
	if r := c.run(bad, "shared", "apply", "-f", "-"); r.code == 0 || !strings.Contains(r.stderr, "spec.endpoints[0].port") {
		t.Errorf("invalid apply: %+v", r)
	}
	// The shared command only takes shared services.
	tenant := "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: tenant-a}\nspec: {}\n"
	if r := c.run(tenant, "shared", "apply", "-f", "-"); r.code == 0 {
		t.Errorf("shared apply of a Tenant: %+v", r)
	}
	c.ok("shared", "delete", "geo")
	if r := c.run("", "shared", "get", "geo"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("get after delete: %+v", r)
	}
}
