package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

// refuseSlowTenantA NACKs any tenant-a cluster with a 7s connect timeout,
// naming it as Envoy does.
func refuseSlowTenantA(u *adsclient.Update) string {
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

// TestNACKAfterRestartRollsBackToPersistedVersion: tenant-a's version is
// accepted and recorded in etcd; a new version is written while no proxy
// is connected; serve restarts. The edge's NACK of the new version rolls
// tenant-a back to the version accepted before the restart (not to
// nothing), and tenant-b stays.
func TestNACKAfterRestartRollsBackToPersistedVersion(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, stopFirst := context.WithCancel(ctx)
	c, err := adsclient.Open(first, p.xdsCon, node("edge-1", "edge"), false)
	if err != nil {
		t.Fatal(err)
	}
	subscribeEdge(t, c)
	go func() {
		for {
			u, err := c.Recv()
			if err != nil {
				return
			}
			if err := c.Ack(u); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		acc, err := p.store.ListAccepted(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if acc["tenant-a"] != nil && acc["tenant-b"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accepted versions in etcd: %v, want tenant-a and tenant-b", acc)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopFirst()
	p.apply(t, tenantYAML("tenant-a", 9021, "      connectTimeout: 7s\n"))
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	p2 := startPlane(t, p.cfg)
	w := watch(t, p2, "edge-1", false, refuseSlowTenantA)
	s := w.until("tenant-a rolled back to its accepted version, tenant-b kept", func(s adsclient.Snapshot) bool {
		return endpointPort(s, "tenant-a.svc") == 9001 && has(s, resourcev3.ClusterType, "tenant-a.svc") &&
			endpointPort(s, "tenant-b.svc") == 9002 && has(s, resourcev3.ClusterType, "tenant-b.svc")
	})
	if cl, ok := s[resourcev3.ClusterType]["tenant-a.svc"].(*clusterv3.Cluster); !ok || cl.GetConnectTimeout().AsDuration() == 7*time.Second {
		t.Error("tenant-a's cluster has the rejected connect timeout")
	}
	st := waitStatus(t, p2, "tenant-a", tenants.StateRejected)
	if !strings.Contains(st.Message, "rejected by edge-1 (Cluster) in group edge") || !strings.Contains(st.Message, "rolled back to resourceVersion") {
		t.Errorf("tenant-a status %q does not say who rejected it and where it went", st.Message)
	}
}

// mtlsConn dials serve's xDS listener with a certificate for id.
func mtlsConn(t *testing.T, ca *testCA, p *plane, id identity.ID) *grpc.ClientConn {
	t.Helper()
	f := ca.client(id)
	cfg, err := tlsconfig.ClientFiles{CA: f.CA, Cert: f.Cert, Key: f.Key, ServerName: "127.0.0.1"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.cfg.XDSListen, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	return conn
}

// heldClusters opens an ADS stream that ACKs everything but cluster
// updates, which it hands over unanswered.
func heldClusters(ctx context.Context, t *testing.T, conn *grpc.ClientConn, n *corev3.Node) (*adsclient.Client, <-chan *adsclient.Update, <-chan error) {
	t.Helper()
	c, err := adsclient.Open(ctx, conn, n, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range edgeTypes {
		var names []string
		if typ == resourcev3.VirtualHostType {
			names = []string{"edge-routes"}
		}
		if err := c.Subscribe(typ, names...); errors.Is(err, io.EOF) {
			break // the server closed the stream: Recv says why
		} else if err != nil {
			t.Fatal(err)
		}
	}
	out, errs := make(chan *adsclient.Update, 16), make(chan error, 1)
	go func() {
		for {
			u, err := c.Recv()
			if err != nil {
				errs <- err
				return
			}
			if u.TypeURL == resourcev3.ClusterType {
				out <- u
				continue
			}
			if err := c.Ack(u); err != nil {
				errs <- err
				return
			}
		}
	}()
	return c, out, errs
}

func nextCluster(t *testing.T, ch <-chan *adsclient.Update, errs <-chan error) *adsclient.Update {
	t.Helper()
	select {
	case u := <-ch:
		return u
	case err := <-errs:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no cluster update within 15s")
	}
	return nil
}

// debugXDS reads /debug/xds from serve's private admin listener.
func debugXDS(t *testing.T, p *plane) xds.DebugInfo {
	t.Helper()
	resp, err := http.Get("http://" + p.cfg.AdminPrivateListen + "/debug/xds")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var d xds.DebugInfo
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("decode /debug/xds: %v", err)
	}
	return d
}

// TestRogueNACKUnderMTLSChangesNothing: serve with --xds-tls-client-ca
// lets only a node of the role whose resources it rejects pin them. The
// rate limit service's certificate (its bare node is in the edge group)
// asking for and NACKing the edge's clusters is refused at the door (the
// identity check: RateLimitConfig only) or, were it admitted, ignored by
// the NACK check; either way it pins nothing and writes no status, and
// the edge's ACK makes the version accepted.
func TestRogueNACKUnderMTLSChangesNothing(t *testing.T) {
	ca := newTestCA(t)
	p := startPlane(t, ca.mtlsConfig())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	edge, edgeUpdates, edgeErrs := heldClusters(ctx, t, mtlsConn(t, ca, p, identity.Edge(trustDomain, "edge-1")), node("edge-1", "edge"))
	for { // until the tenants are in (the store's watch delivers them asynchronously)
		u := nextCluster(t, edgeUpdates, edgeErrs)
		if err := edge.Ack(u); err != nil {
			t.Fatal(err)
		}
		if u.Resources["tenant-a.svc"] != nil && u.Resources["tenant-b.svc"] != nil {
			break
		}
	}
	waitStatus(t, p, "tenant-a", tenants.StateAccepted)
	rogue, rogueUpdates, rogueErrs := heldClusters(ctx, t, mtlsConn(t, ca, p, identity.Ratelimit(trustDomain, "rls-1")), &corev3.Node{Id: "rls-1"})
	rogueIn := true
	select {
	case u := <-rogueUpdates:
		if err := rogue.Ack(u); err != nil {
			t.Fatal(err)
		}
	case err := <-rogueErrs:
		// The identity check may turn the stream away at the door.
		if c := status.Code(err); c != codes.PermissionDenied && c != codes.Unauthenticated && c != codes.InvalidArgument {
			t.Fatalf("rogue stream: %v", err)
		}
		rogueIn = false
	case <-time.After(15 * time.Second):
		t.Fatal("rogue stream: neither a response nor a refusal")
	}

	p.apply(t, tenantYAML("tenant-a", 9021, "      connectTimeout: 7s\n"))
	held := nextCluster(t, edgeUpdates, edgeErrs)
	if refuseSlowTenantA(held) == "" {
		t.Fatal("the edge did not get tenant-a's new version")
	}
	if rogueIn {
		bad := nextCluster(t, rogueUpdates, rogueErrs)
		if err := rogue.Nack(bad, refuseSlowTenantA(bad)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for rogueRow(debugXDS(t, p)).NACKs == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the rogue's NACK is not on its row in /debug/xds: %+v", debugXDS(t, p).Nodes)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r := rogueRow(debugXDS(t, p)); r.NACKsIgnored != 1 || r.LastNACKIgnored != "wrong_role" {
			t.Errorf("the rogue's row %+v, want its NACK ignored as wrong_role", r)
		}
	}
	if d := debugXDS(t, p); len(d.Pins) > 0 {
		t.Errorf("a rogue NACK pinned %+v", d.Pins)
	}
	if st, err := p.store.GetStatus(ctx, "tenant-a"); err != nil || st == nil || st.State != tenants.StateAccepted {
		t.Errorf("tenant-a status after the rogue NACK: %+v, %v; want still accepted", st, err)
	}
	if err := edge.Ack(held); err != nil {
		t.Fatal(err)
	}
	o, err := p.store.Get(ctx, tenants.KindTenant, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	rev, err := strconv.ParseInt(o.GetMeta().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := p.store.GetStatus(ctx, "tenant-a")
		if err != nil {
			t.Fatal(err)
		}
		if st != nil && st.State == tenants.StateAccepted && st.Revision == rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant-a status %+v, want accepted at its new revision %d", st, rev)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rogueRow(d xds.DebugInfo) xds.NACKStats {
	for _, n := range d.Nodes {
		if n.ID == "rls-1" {
			return n.NACKStats
		}
	}
	return xds.NACKStats{}
}
