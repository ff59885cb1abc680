package integration

import (
	"context"
	"maps"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

var edgeTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType, resourcev3.VirtualHostType}

// subscribeEdge subscribes to what an Envoy edge asks for: every type as a
// wildcard, VHDS by the name of its route configuration (a namespace).
func subscribeEdge(t testing.TB, c *adsclient.Client) {
	t.Helper()
	for _, typ := range edgeTypes {
		var names []string
		if typ == resourcev3.VirtualHostType {
			names = []string{"edge-routes"}
		}
		if err := c.Subscribe(typ, names...); err != nil {
			t.Fatal(err)
		}
	}
}

// watcher keeps a node's view of the configuration from an ADS stream,
// ACKing every response (or NACKing those nack selects).
type watcher struct {
	t       *testing.T
	updates chan adsclient.Snapshot
	snap    adsclient.Snapshot
}

func watch(t *testing.T, p *plane, nodeID string, delta bool, nack func(*adsclient.Update) string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := adsclient.Open(ctx, p.xdsCon, node(nodeID, "edge"), delta)
	if err != nil {
		t.Fatal(err)
	}
	subscribeEdge(t, c)
	w := &watcher{t: t, updates: make(chan adsclient.Snapshot, 1024)}
	go func() {
		snap := adsclient.Snapshot{}
		for {
			u, err := c.Recv()
			if err != nil {
				close(w.updates)
				return
			}
			if msg := nackOf(nack, u); msg != "" {
				if err := c.Nack(u, msg); err != nil {
					return
				}
				continue
			}
			if err := snap.Apply(u, !delta && adsclient.FullState(u.TypeURL)); err != nil {
				t.Errorf("apply update: %v", err)
				return
			}
			if err := c.Ack(u); err != nil {
				return
			}
			w.updates <- clone(snap)
		}
	}()
	return w
}

func nackOf(nack func(*adsclient.Update) string, u *adsclient.Update) string {
	if nack == nil {
		return ""
	}
	return nack(u)
}

func clone(s adsclient.Snapshot) adsclient.Snapshot {
	out := adsclient.Snapshot{}
	for typ, m := range s {
		out[typ] = map[string]proto.Message{}
		for k, v := range m {
			out[typ][k] = v
		}
	}
	return out
}

// until waits for a snapshot that satisfies cond.
func (w *watcher) until(what string, cond func(adsclient.Snapshot) bool) adsclient.Snapshot {
	w.t.Helper()
	if w.snap != nil && cond(w.snap) {
		return w.snap
	}
	deadline := time.After(15 * time.Second)
	for {
		select {
		case s, ok := <-w.updates:
			if !ok {
				w.t.Fatalf("stream ended while waiting for %s", what)
			}
			w.snap = s
			if cond(s) {
				return s
			}
		case <-deadline:
			w.t.Fatalf("timed out waiting for %s; have clusters %v", what, names(w.snap[resourcev3.ClusterType]))
			return nil
		}
	}
}

func names(m map[string]proto.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func has(s adsclient.Snapshot, typ, name string) bool { _, ok := s[typ][name]; return ok }

func endpointPort(s adsclient.Snapshot, cluster string) uint32 {
	cla, ok := s[resourcev3.EndpointType][cluster].(*endpointv3.ClusterLoadAssignment)
	if !ok || len(cla.GetEndpoints()) == 0 || len(cla.GetEndpoints()[0].GetLbEndpoints()) == 0 {
		return 0
	}
	return cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
}

func TestTenantLifecycleReachesTheProxy(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	w := watch(t, p, "edge-1", true, nil)

	w.until("both tenants", func(s adsclient.Snapshot) bool {
		return has(s, resourcev3.ClusterType, "tenant-a.svc") && has(s, resourcev3.ClusterType, "tenant-b.svc") &&
			has(s, resourcev3.ListenerType, "edge-http") && has(s, resourcev3.RouteType, "edge-routes") &&
			has(s, resourcev3.VirtualHostType, "edge-routes/tenant-a") && has(s, resourcev3.VirtualHostType, "edge-routes/tenant-b")
	})

	p.apply(t, tenantYAML("tenant-a", 9011, ""))
	w.until("tenant-a's new endpoint", func(s adsclient.Snapshot) bool { return endpointPort(s, "tenant-a.svc") == 9011 })

	p.delete(t, "tenant-b")
	w.until("tenant-b gone", func(s adsclient.Snapshot) bool {
		return !has(s, resourcev3.ClusterType, "tenant-b.svc") && has(s, resourcev3.ClusterType, "tenant-a.svc") &&
			!has(s, resourcev3.VirtualHostType, "edge-routes/tenant-b") && has(s, resourcev3.VirtualHostType, "edge-routes/tenant-a")
	})
}

func TestCorruptTenantValueDoesNotStopOthers(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	w := watch(t, p, "edge-1", true, nil)
	w.until("both tenants", func(s adsclient.Snapshot) bool {
		return endpointPort(s, "tenant-a.svc") == 9001 && endpointPort(s, "tenant-b.svc") == 9002
	})

	// Somebody writes garbage into tenant-a's key by hand.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.cli.Put(ctx, store.DefaultPrefix+"tenants/tenant-a", `{"apiVersion": "tenantmesh.io/v1alpha1", "kind": "Tenant", "spec": {`); err != nil {
		t.Fatal(err)
	}
	// Compact everything so far: the watch must survive it.
	resp, err := p.cli.Get(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	p.apply(t, tenantYAML("tenant-b", 9012, ""))
	s := w.until("tenant-b's change", func(s adsclient.Snapshot) bool { return endpointPort(s, "tenant-b.svc") == 9012 })
	if got := endpointPort(s, "tenant-a.svc"); got != 9001 {
		t.Fatalf("tenant-a endpoint %d, want its last good 9001", got)
	}
	st := waitStatus(t, p, "tenant-a", tenants.StateInvalid)
	if st.Message == "" {
		t.Error("invalid status without a reason")
	}
}

func TestRestartServesCompleteConfigurationFirst(t *testing.T) {
	cfg := configWithoutPreload()
	p := startPlane(t, cfg)
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	w := watch(t, p, "edge-1", false, nil)
	w.until("both tenants", func(s adsclient.Snapshot) bool { return endpointPort(s, "tenant-b.svc") == 9002 })
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Same data dir and addresses: a proxy reconnecting at once must get the
	// full configuration in the very first response of each type.
	p2 := startPlane(t, p.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := adsclient.Open(ctx, p2.xdsCon, node("edge-1", "edge"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	u, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tenant-a.svc", "tenant-b.svc", "tenantmesh-authz", "tenantmesh-ratelimit"} {
		if _, ok := u.Resources[want]; !ok {
			t.Errorf("first CDS response after restart lacks %s (has %d clusters)", want, len(u.Resources))
		}
	}
}

// A delta client (Envoy) reconnecting to a restarted serve sends the
// versions it holds; only what changed meanwhile comes back. This needs
// versions that are content hashes, stable across restarts, and a cache
// that honours initial_resource_versions.
func TestDeltaReconnectAfterRestartResendsOnlyTheChange(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	held := map[string]string{}
	c1, err := adsclient.Open(ctx, p.xdsCon, node("edge-1", "edge"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Subscribe(resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	for held["tenant-a.svc"] == "" || held["tenant-b.svc"] == "" {
		u, err := c1.Recv()
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(held, u.Versions)
		if err := c1.Ack(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	p2 := startPlane(t, p.cfg)
	p2.apply(t, tenantYAML("tenant-a", 9001, "      connectTimeout: 3s\n"))
	c2, err := adsclient.Open(ctx, p2.xdsCon, node("edge-1", "edge"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.SubscribeHolding(resourcev3.ClusterType, held); err != nil {
		t.Fatal(err)
	}
	for {
		u, err := c2.Recv()
		if err != nil {
			t.Fatalf("waiting for tenant-a's changed cluster: %v", err)
		}
		for name := range u.Resources {
			if name != "tenant-a.svc" {
				t.Errorf("%s resent after the restart though the client holds its version", name)
			}
		}
		if len(u.Removed) > 0 {
			t.Errorf("removed after the restart: %v", u.Removed)
		}
		if a, ok := u.Resources["tenant-a.svc"]; ok {
			c := &clusterv3.Cluster{}
			if err := a.UnmarshalTo(c); err != nil {
				t.Fatal(err)
			}
			if c.GetConnectTimeout().AsDuration() == 3*time.Second {
				return
			}
		}
		if err := c2.Ack(u); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNACKRollsBackOnlyThatTenant(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	// This proxy refuses any tenant-a cluster with a 7s connect timeout.
	refuse := func(u *adsclient.Update) string {
		a, ok := u.Resources["tenant-a.svc"]
		if u.TypeURL != resourcev3.ClusterType || !ok {
			return ""
		}
		c := &clusterv3.Cluster{}
		if err := a.UnmarshalTo(c); err != nil || c.GetConnectTimeout().AsDuration() != 7*time.Second {
			return ""
		}
		return "Error adding/updating cluster(s) tenant-a.svc: connect timeout 7s is not allowed here"
	}
	w := watch(t, p, "edge-1", false, refuse)
	w.until("both tenants", func(s adsclient.Snapshot) bool {
		return has(s, resourcev3.ClusterType, "tenant-a.svc") && has(s, resourcev3.ClusterType, "tenant-b.svc")
	})
	waitStatus(t, p, "tenant-a", tenants.StateAccepted)

	slow := "      connectTimeout: 7s\n"
	p.apply(t, tenantYAML("tenant-a", 9021, slow), tenantYAML("tenant-b", 9022, ""))
	st := waitStatus(t, p, "tenant-a", tenants.StateRejected)
	t.Logf("tenant-a status: %+v", st)
	// tenant-b's change stays; tenant-a's endpoints (sent beside the rejected
	// cluster) return to the accepted version.
	s := w.until("tenant-b's change and tenant-a rolled back", func(s adsclient.Snapshot) bool {
		return endpointPort(s, "tenant-b.svc") == 9022 && endpointPort(s, "tenant-a.svc") == 9001
	})
	c, ok := s[resourcev3.ClusterType]["tenant-a.svc"].(*clusterv3.Cluster)
	if !ok || c.GetConnectTimeout().AsDuration() == 7*time.Second {
		t.Errorf("tenant-a cluster still has the rejected connect timeout")
	}

	// A corrected version is tried again and accepted.
	p.apply(t, tenantYAML("tenant-a", 9031, "      connectTimeout: 3s\n"))
	w.until("tenant-a's corrected version", func(s adsclient.Snapshot) bool { return endpointPort(s, "tenant-a.svc") == 9031 })
	waitStatus(t, p, "tenant-a", tenants.StateAccepted)
}

func waitStatus(t *testing.T, p *plane, id, state string) *tenants.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last *tenants.Status
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := p.store.GetStatus(ctx, id)
		cancel()
		if err != nil {
			t.Fatalf("status of %s: %v", id, err)
		}
		if st != nil && st.State == state {
			return st
		}
		last = st
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("status of %s is %+v, want %s", id, last, state)
	return nil
}
