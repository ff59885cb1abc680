package xds

import (
	"context"
	"slices"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

// TestVHDSSubscriptionAsEnvoySendsIt subscribes to VHDS exactly as an Envoy
// edge does over delta ADS: after the route configuration edge-routes
// arrives with vhds set, one VirtualHost request with no resource names
// (a namespace watch sends none: new_grpc_mux_impl.cc, updateWatch), which
// is a wildcard. The server must send every tenant's edge-routes/<id>, each
// one Envoy's watch keeps (name up to its last '/' is edge-routes:
// watch_map.cc), and afterwards exactly what changed: a changed and an
// added tenant's virtual hosts, and a deleted tenant's as removed.
func TestVHDSSubscriptionAsEnvoySendsIt(t *testing.T) {
	s, conn, _ := serve(t)
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
	s.Update(cat)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := adsclient.Open(ctx, conn, edgeNode("e1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.RouteType, "edge-routes"); err != nil {
		t.Fatal(err)
	}
	u := recv(t, c, resourcev3.RouteType, 10*time.Second)
	rc := &routev3.RouteConfiguration{}
	if err := u.Resources["edge-routes"].UnmarshalTo(rc); err != nil {
		t.Fatal(err)
	}
	if rc.GetVhds() == nil {
		t.Fatal("edge-routes has no vhds: Envoy would not subscribe to VirtualHost at all")
	}
	if err := c.Ack(u); err != nil {
		t.Fatal(err)
	}

	if err := c.SubscribeNamespace(resourcev3.VirtualHostType); err != nil {
		t.Fatal(err)
	}
	first := recv(t, c, resourcev3.VirtualHostType, 10*time.Second)
	wantNames(t, "initial", first.Resources, "edge-routes/tenant-a", "edge-routes/tenant-b")
	for name, res := range first.Resources {
		if !adsclient.InNamespace(name, rc.GetName()) {
			t.Errorf("virtual host %s: Envoy's VHDS watch on %s would drop it", name, rc.GetName())
		}
		vh := &routev3.VirtualHost{}
		if err := res.UnmarshalTo(vh); err != nil || vh.GetName() != name {
			t.Errorf("resource %s holds virtual host %q (%v)", name, vh.GetName(), err)
		}
	}
	if err := c.Ack(first); err != nil {
		t.Fatal(err)
	}

	// tenant-a changes, tenant-c arrives, tenant-b is deleted.
	a2, c3 := tenant("tenant-a", 9001, 8), tenant("tenant-c", 9003, 9)
	a2.Spec.Routes[0].Timeout = "4s"
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{a2, c3}}, cat))
	// The change may arrive in more than one response; collect until both
	// the upserts and the removal were seen.
	added, removed := map[string]bool{}, []string(nil)
	deadline := time.Now().Add(10 * time.Second)
	for (len(added) < 2 || len(removed) < 1) && time.Now().Before(deadline) {
		next := recv(t, c, resourcev3.VirtualHostType, time.Until(deadline))
		for name := range next.Resources {
			added[name] = true
		}
		removed = append(removed, next.Removed...)
		if err := c.Ack(next); err != nil {
			t.Fatal(err)
		}
	}
	if !added["edge-routes/tenant-a"] || !added["edge-routes/tenant-c"] || len(added) != 2 {
		t.Errorf("after the change the server sent %v, want edge-routes/tenant-a and edge-routes/tenant-c", added)
	}
	if !slices.Equal(removed, []string{"edge-routes/tenant-b"}) {
		t.Errorf("removed %v, want [edge-routes/tenant-b]", removed)
	}
}

func wantNames(t *testing.T, what string, got map[string]*anypb.Any, want ...string) {
	t.Helper()
	names := keys(got)
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("%s virtual hosts %v, want %v", what, names, want)
	}
}
