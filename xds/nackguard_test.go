package xds

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// refused reports whether err says the server turned the stream away at
// the door (the identity check refuses a certificate that does not match
// the node's metadata): then the rogue never got to NACK, which is as
// safe as a NACK that changes nothing.
func refused(err error) bool {
	c := status.Code(err)
	return c == codes.PermissionDenied || c == codes.Unauthenticated || c == codes.InvalidArgument
}

// TestRogueNACKChangesNothing: under mTLS a NACK from a stream without a
// verified identity, or with the identity of another role, pins nothing,
// writes no status and pushes nothing to anyone: the trusted edge, which
// accepts the version, gets it accepted.
func TestRogueNACKChangesNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		id     *identity.ID
		reason string
	}{
		"unauthenticated": {nil, ignoredUnauthenticated},
		// A sidecar's certificate on a stream that says it is an edge.
		"sidecar identity about edge resources": {idPtr(identity.Service(testTrustDomain, "tenant-a", "svc")), ignoredWrongRole},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			f := newTLSFixture(t, Options{Registerer: reg, RequireIdentity: true})
			a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
			cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
			f.s.Update(cat)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			edge := open(ctx, t, f.conn(t, idPtr(identity.Edge(testTrustDomain, "e1"))), edgeNode("e1"), true)
			if err := edge.c.Ack(edge.next(t)); err != nil {
				t.Fatal(err)
			}
			settled(t, f.s)
			rogue := open(ctx, t, f.conn(t, tc.id), edgeNode("e1"), false)
			var first error
			select {
			case u := <-rogue.clusters:
				first = rogue.c.Ack(u)
			case first = <-rogue.err:
			case <-time.After(10 * time.Second):
				t.Fatal("rogue stream: neither a response nor a refusal")
			}
			rogueIn := first == nil
			if !rogueIn && !refused(first) {
				t.Fatalf("rogue stream: %v", first)
			}

			a2 := slowTenant("tenant-a", 9001, 8, "3s")
			cat2 := tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{a2, b}}, cat)
			f.s.Update(cat2)
			held := edge.next(t) // the trusted edge answers last
			if got := connectTimeout(t, held, "tenant-a.svc"); got != 3*time.Second {
				t.Fatalf("edge got tenant-a with connect timeout %v, want 3s", got)
			}
			if rogueIn {
				bad := rogue.next(t)
				if err := rogue.c.Nack(bad, "Error adding/updating cluster(s) tenant-a.svc: rogue"); err != nil {
					t.Fatal(err)
				}
				nacks := f.s.metrics.nacks.WithLabelValues("Cluster")
				eventually(t, "the rogue NACK handled", func() bool { return counterValue(nacks) == 1 })
				if got := counterValue(f.s.metrics.nacksIgnored.WithLabelValues(tc.reason)); got != 1 {
					t.Errorf("tenantmesh_xds_nacks_ignored_total{reason=%q} = %v, want 1", tc.reason, got)
				}
			} else {
				t.Logf("the rogue stream was refused (%v); checking that nothing changed", first)
			}
			if d := f.s.Debug(); len(d.Pins) > 0 || len(d.Rejected) > 0 {
				t.Errorf("a rogue NACK pinned %v", d.Pins)
			}
			if src := servedSrc(f.s, edgeGroup, "tenant-a"); src == nil || src.Metadata.ResourceVersion != "8" {
				t.Errorf("edge group serves tenant-a %v after the rogue NACK, want resourceVersion 8", src)
			}
			if err := edge.c.Ack(held); err != nil {
				t.Fatal(err)
			}
			eventually(t, "tenant-a accepted at revision 8", func() bool {
				s := f.st.statuses("tenant-a")
				return len(s) > 0 && s[len(s)-1] == tenants.StateAccepted+"@8"
			})
			if f.st.has("tenant-a", tenants.StateRejected) {
				t.Errorf("a rogue NACK wrote a status: %v", f.st.statuses("tenant-a"))
			}
			// Nothing was pushed to the edge meanwhile: its next update is
			// the next change, tenant-b's, and only that.
			b2 := slowTenant("tenant-b", 9002, 10, "4s")
			f.s.Update(tenants.NewCatalog(tenants.Input{Revision: 10, Tenants: []*tenants.Tenant{a2, b2}}, cat2))
			u := edge.next(t)
			if _, ok := u.Resources["tenant-a.svc"]; ok || len(u.Removed) > 0 || u.Resources["tenant-b.svc"] == nil {
				t.Errorf("edge's next update: %v, removed %v; want tenant-b.svc alone", keys(u.Resources), u.Removed)
			}
		})
	}
}

// TestAnswersCountOnlyFromTheGroupsRole: under RequireIdentity a NACK
// pins, and an ACK settles, only when the stream's verified identity is of
// the role of the group whose resources it answers. openStream and
// bindNode refuse such streams before they get here (identity.go); this
// is the check the NACK path makes again whatever admitted the stream, so
// the streams are set up by hand.
func TestAnswersCountOnlyFromTheGroupsRole(t *testing.T) {
	sidecar := translate.Node{ID: "a-1", Role: translate.RoleSidecar, Tenant: "tenant-a", Service: "svc", AppPort: 8080}
	for name, tc := range map[string]struct {
		uri    string // "" unauthenticated
		id     identity.ID
		node   translate.Node
		reason string // "" when the answer counts
	}{
		"edge ID, edge group":            {id: identity.Edge(testTrustDomain, "e1"), node: translate.Node{ID: "e1", Role: translate.RoleEdge}},
		"service ID, its sidecar group":  {id: identity.Service(testTrustDomain, "tenant-a", "svc"), node: sidecar},
		"no identity, edge group":        {node: translate.Node{ID: "e1", Role: translate.RoleEdge}, reason: ignoredUnauthenticated},
		"ratelimit ID, edge group":       {id: identity.Ratelimit(testTrustDomain, "rls"), node: translate.Node{ID: "rls", Role: translate.RoleEdge}, reason: ignoredWrongRole},
		"service ID, edge group":         {id: identity.Service(testTrustDomain, "tenant-a", "svc"), node: translate.Node{ID: "e1", Role: translate.RoleEdge}, reason: ignoredWrongRole},
		"other tenant's ID, its sidecar": {id: identity.Service(testTrustDomain, "tenant-b", "svc"), node: sidecar, reason: ignoredWrongRole},
		"grpc ID, edge group":            {id: identity.GRPC(testTrustDomain, "g"), node: translate.Node{ID: "e1", Role: translate.RoleEdge}, reason: ignoredWrongRole},
	} {
		for _, ack := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ack=%v", name, ack), func(t *testing.T) {
				s := New(Options{RequireIdentity: true, TrustDomain: testTrustDomain, Status: &statusLog{}})
				cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 5)}}, nil)
				s.Update(cat)
				ref := streamRef{true, 1}
				s.mu.Lock()
				c := &streamConn{}
				if tc.id.Kind != "" {
					c.id, c.uri = tc.id, tc.id.String()
				}
				s.conns[ref] = c
				if err := s.ensureGroup(ref, tc.node); err != nil {
					s.mu.Unlock()
					t.Fatal(err)
				}
				s.mu.Unlock()
				s.Update(tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{slowTenant("tenant-a", 9001, 8, "3s")}}, cat))
				s.mu.Lock()
				gt := groupType{groupKey(tc.node), resourcev3.ClusterType}
				s.acc.recordSent(sentKey{true, 1, "n1"}, gt, fmt.Sprintf("p.%d", s.acc.versions[gt]))
				var nack *rpcstatus.Status
				if !ack {
					nack = &rpcstatus.Status{Message: "Error adding/updating cluster(s) tenant-a.svc: bad"}
				}
				err := s.onAck(ref, nil, resourcev3.ClusterType, "n1", nack)
				p := s.acc.pending["tenant-a"]
				settledHere := p == nil || !p.waitsIn(gt.group)
				_, pinned := s.acc.pins[gt.group]["tenant-a"]
				s.mu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
				counts := tc.reason == ""
				switch {
				case !ack && pinned != counts:
					t.Errorf("NACK pinned = %v, want %v", pinned, counts)
				case ack && settledHere != counts:
					t.Errorf("ACK settled the group's wait = %v, want %v", settledHere, counts)
				}
				ignored := s.metrics.nacksIgnored
				if ack {
					ignored = s.metrics.acksIgnored
				}
				if !counts && counterValue(ignored.WithLabelValues(tc.reason)) != 1 {
					t.Errorf("not counted as ignored for %s", tc.reason)
				}
			})
		}
	}
}

// TestTrustedEdgeNACKPinsOnlyTheEdgeGroup: an edge's NACK rolls tenant-a
// back in the edge group; tenant-a's sidecar, which accepted the same
// version, keeps it. The status names the NACKing node though the delta
// stream sent its node only in its first request.
func TestTrustedEdgeNACKPinsOnlyTheEdgeGroup(t *testing.T) {
	f := newTLSFixture(t, Options{RequireIdentity: true})
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
	f.s.Update(cat)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	edge := open(ctx, t, f.conn(t, idPtr(identity.Edge(testTrustDomain, "e1"))), edgeNode("e1"), true)
	if err := edge.c.Ack(edge.next(t)); err != nil {
		t.Fatal(err)
	}
	side := open(ctx, t, f.conn(t, idPtr(identity.Service(testTrustDomain, "tenant-a", "svc"))), sidecarNode("a-1", "tenant-a", "svc", 8080), true)
	if err := side.c.Ack(side.next(t)); err != nil {
		t.Fatal(err)
	}
	settled(t, f.s)
	sidecarGroup := groupKey(translate.Node{Role: translate.RoleSidecar, Tenant: "tenant-a", Service: "svc", AppPort: 8080})

	a2 := slowTenant("tenant-a", 9001, 8, "3s")
	cat2 := tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{a2, b}}, cat)
	f.s.Update(cat2)
	if err := side.c.Ack(side.next(t)); err != nil {
		t.Fatal(err)
	}
	bad := edge.next(t)
	if err := edge.c.Nack(bad, "Error adding/updating cluster(s) tenant-a.svc: the edge dislikes it"); err != nil {
		t.Fatal(err)
	}
	fixed := edge.next(t)
	if got := connectTimeout(t, fixed, "tenant-a.svc"); got != 2*time.Second {
		t.Errorf("edge: tenant-a connect timeout %v after its NACK, want the accepted 2s", got)
	}
	if err := edge.c.Ack(fixed); err != nil {
		t.Fatal(err)
	}
	// Another change re-syncs every group: the pin must not reach the sidecar's.
	f.s.Update(tenants.NewCatalog(tenants.Input{Revision: 10, Tenants: []*tenants.Tenant{a2, slowTenant("tenant-b", 9002, 10, "4s")}}, cat2))
	if u := edge.next(t); u.Resources["tenant-a.svc"] != nil {
		t.Errorf("edge got tenant-a again on tenant-b's change: %v", keys(u.Resources))
	}
	if src := servedSrc(f.s, sidecarGroup, "tenant-a"); src == nil || src.Metadata.ResourceVersion != "8" {
		t.Errorf("sidecar group serves tenant-a %v, want its accepted resourceVersion 8", src)
	}
	if src := servedSrc(f.s, edgeGroup, "tenant-a"); src == nil || src.Metadata.ResourceVersion != "5" {
		t.Errorf("edge group serves tenant-a %v, want the rollback to resourceVersion 5", src)
	}
	pins := f.s.Debug().Pins
	if len(pins) != 1 || pins[0] != (DebugPin{Tenant: "tenant-a", Group: edgeGroup, Node: "e1", RejectedRevision: "8", ServedRevision: "5",
		Reason: "Error adding/updating cluster(s) tenant-a.svc: the edge dislikes it"}) {
		t.Errorf("pins %+v, want tenant-a in the edge group alone", pins)
	}
	rej := waitStatus(t, f.st, "tenant-a", tenants.StateRejected)
	for _, want := range []string{"rejected by e1 (Cluster) in group edge: ", "resourceVersion 5"} {
		if !strings.Contains(rej.Message, want) {
			t.Errorf("status message %q lacks %q", rej.Message, want)
		}
	}
}

// TestNACKWithoutAcceptedVersionRemovesNothing: a tenant whose first
// version is rejected stays served (the proxy keeps what it had, and
// other proxies keep it); it is marked rejected.
func TestNACKWithoutAcceptedVersionRemovesNothing(t *testing.T) {
	s, conn, st := serve(t)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)}}, nil)
	s.Update(cat)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	edge := open(ctx, t, conn, edgeNode("e1"), true)
	if err := edge.c.Nack(edge.next(t), "Error adding/updating cluster(s) tenant-a.svc: never accepted"); err != nil {
		t.Fatal(err)
	}
	rej := waitStatus(t, st, "tenant-a", tenants.StateRejected)
	if !strings.Contains(rej.Message, "stays served") {
		t.Errorf("status message %q does not say the tenant stays served", rej.Message)
	}
	if pins := s.Debug().Pins; len(pins) != 1 || pins[0].ServedRevision != "" {
		t.Errorf("pins %+v, want tenant-a pinned to nothing older", pins)
	}
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 5), slowTenant("tenant-b", 9002, 8, "4s")}}, cat))
	u := edge.next(t)
	if len(u.Removed) > 0 || u.Resources["tenant-b.svc"] == nil {
		t.Errorf("update after the NACK: %v, removed %v; want tenant-b's change and no removal", keys(u.Resources), u.Removed)
	}
	if src := servedSrc(s, edgeGroup, "tenant-a"); src == nil {
		t.Error("the NACK removed tenant-a from the edge group")
	}
}

// TestNACKStormIsRateLimited: beyond PerMinute NACKs a minute, a node's
// NACKs change nothing; they are counted and shown on its row.
func TestNACKStormIsRateLimited(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	st, logs := &statusLog{}, &syncBuffer{}
	s := New(Options{Status: st, NACK: NACKOptions{PerMinute: 3, Now: clock.Now},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	conn := listen(t, s)
	prev := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 5)}}, nil)
	s.Update(prev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	edge := open(ctx, t, conn, edgeNode("e1"), true)
	if err := edge.c.Ack(edge.next(t)); err != nil {
		t.Fatal(err)
	}
	settled(t, s)
	nackVersion := func(rev int64) {
		t.Helper()
		prev = tenants.NewCatalog(tenants.Input{Revision: rev, Tenants: []*tenants.Tenant{slowTenant("tenant-a", 9001, rev, strconv.FormatInt(rev, 10)+"s")}}, prev)
		s.Update(prev)
		if err := edge.c.Nack(edge.next(t), "Error adding/updating cluster(s) tenant-a.svc: storm"); err != nil {
			t.Fatal(err)
		}
	}
	for rev := int64(10); rev < 13; rev++ {
		nackVersion(rev)
		if err := edge.c.Ack(edge.next(t)); err != nil { // the rollback
			t.Fatal(err)
		}
	}
	nackVersion(13)
	limited := s.metrics.nacksIgnored.WithLabelValues(ignoredRateLimited)
	eventually(t, "the 4th NACK rate limited", func() bool { return counterValue(limited) == 1 })
	if pins := s.Debug().Pins; len(pins) != 0 {
		t.Errorf("a NACK over the limit pinned %+v", pins)
	}
	if src := servedSrc(s, edgeGroup, "tenant-a"); src == nil || src.Metadata.ResourceVersion != "13" {
		t.Errorf("edge group serves tenant-a %v, want resourceVersion 13 (the limited NACK rolls nothing back)", src)
	}
	if got := st.statuses("tenant-a"); strings.Contains(strings.Join(got, " "), tenants.StateRejected+"@13") {
		t.Errorf("a NACK over the limit wrote a status: %v", got)
	}
	nodes := s.Debug().Nodes
	if len(nodes) != 1 || nodes[0].NACKs != 4 || nodes[0].NACKsIgnored != 1 || nodes[0].LastNACKIgnored != ignoredRateLimited ||
		nodes[0].LastNACK == nil || !strings.Contains(nodes[0].LastNACKError, "storm") {
		t.Errorf("node row %+v, want 4 NACKs, 1 ignored as rate_limited, the last error", nodes)
	}
	// The storm goes on: counted, logged once a minute.
	nackVersion(14)
	eventually(t, "the 5th NACK rate limited", func() bool { return counterValue(limited) == 2 })
	warned := strings.Count(logs.String(), `"level":"WARN","msg":"NACK ignored`)
	quiet := strings.Count(logs.String(), `"level":"DEBUG","msg":"NACK ignored`)
	if warned != 1 || quiet != 1 {
		t.Errorf("two rate limited NACKs logged %d times at WARN and %d at DEBUG, want once each", warned, quiet)
	}
	// A minute later the node's NACKs count again.
	clock.Add(time.Minute)
	nackVersion(15)
	if got := connectTimeout(t, edge.next(t), "tenant-a.svc"); got != 2*time.Second {
		t.Errorf("NACK after the limit refilled: tenant-a connect timeout %v, want the rollback to 2s", got)
	}
}
