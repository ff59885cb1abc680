package store

import (
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

func sharedYAML(name, display string) string {
	return `apiVersion: tenantmesh.io/v1alpha1
kind: SharedService
metadata: {name: ` + name + `}
spec:
  displayName: ` + display + `
  endpoints: [{address: 10.9.0.1, port: 8080}]
`
}

func sharedDisplay(c *tenants.Catalog, name string) string {
	if s, ok := c.SharedService(name); ok {
		return s.Spec.DisplayName
	}
	return "<absent>"
}

// TestWatchLoadsSharedServices: shared/<name> keys reach the Catalog; a
// bad value keeps the last good version; unchanged services keep their
// pointer (the xds layer compares them that way); delete removes them.
func TestWatchLoadsSharedServices(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A")+"---\n"+sharedYAML("geo", "Geo")+"---\n"+sharedYAML("maps", "Maps"))
	if n := keyCount(t, cli, "shared/"); n != 2 {
		t.Fatalf("%d keys under shared/, want 2", n)
	}
	w := startWatch(t, s, 0)
	c1 := w.waitFor(t, "two shared services", func(c *tenants.Catalog) bool { return len(c.SharedServices()) == 2 })
	geo1, _ := c1.SharedService("geo")

	mustApply(t, s, sharedYAML("maps", "Maps 2"))
	c2 := w.waitFor(t, "maps renamed", func(c *tenants.Catalog) bool { return sharedDisplay(c, "maps") == "Maps 2" })
	if geo2, _ := c2.SharedService("geo"); geo2 != geo1 {
		t.Error("unchanged shared service geo is a new object")
	}

	// Hand-written invalid value: the last good version is kept.
	if _, err := cli.Put(ctx, testPrefix+"shared/geo", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"SharedService","metadata":{"name":"geo"},"spec":{"endpoints":[]}}`); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, tenantYAML("tenant-a", "A2"))
	c3 := w.waitFor(t, "tenant-a is A2", func(c *tenants.Catalog) bool { return displayName(c, "tenant-a") == "A2" })
	if sharedDisplay(c3, "geo") != "Geo" {
		t.Errorf("geo after a bad write: %q, want the last good version", sharedDisplay(c3, "geo"))
	}

	if err := s.Delete(ctx, tenants.KindSharedService, "maps", "test"); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "maps deleted", func(c *tenants.Catalog) bool { return sharedDisplay(c, "maps") == "<absent>" })
}
