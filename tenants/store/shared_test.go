package store

import (
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

const sharedYAML = `apiVersion: tenantmesh.io/v1alpha1
kind: SharedService
metadata:
  name: geo
spec:
  endpoints: [{address: geo.shared.svc, port: 8080}]
`

// A shared service stored before the watch starts is in the first
// Catalog, and stays across a re-read of etcd.
func TestWatchLoadsSharedServices(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, sharedYAML+"---\n"+tenantYAML("tenant-a", "A"))
	s.pauseWatch = make(chan chan struct{})
	w := startWatch(t, s, 0)
	has := func(c *tenants.Catalog) bool { _, ok := c.SharedService("geo"); return ok }
	c := w.waitFor(t, "the first catalog", func(c *tenants.Catalog) bool { return c.Len() == 1 })
	if !has(c) {
		t.Fatal("shared service stored before the watch is missing from the first catalog")
	}
	// Force a re-read: compact past the watch's position.
	resume := make(chan struct{})
	s.pauseWatch <- resume
	last := mustApply(t, s, tenantYAML("tenant-a", "A2")).Revision
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	close(resume)
	c = w.waitFor(t, "the re-read catalog", func(c *tenants.Catalog) bool { return displayName(c, "tenant-a") == "A2" })
	if !has(c) {
		t.Fatal("shared service lost by a re-read of etcd")
	}
}
