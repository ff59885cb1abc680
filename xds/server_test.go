package xds

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
	"github.com/tenantmesh/tenantmesh/xds/translate"

	"github.com/tenantmesh/tenantmesh/internal/grpctest"
)

// tenant builds a small valid tenant whose upstream listens on port.
func tenant(id string, port int, rev int64) *tenants.Tenant {
	return &tenants.Tenant{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
		Metadata: tenants.ObjectMeta{Name: id, ResourceVersion: strconv.FormatInt(rev, 10)},
		Spec: tenants.TenantSpec{
			Tier:       "standard",
			Hosts:      []string{id + ".example.com"},
			PathPrefix: true,
			Routes:     []tenants.Route{{Name: "api", Match: tenants.RouteMatch{PathPrefix: "/api/"}, Upstream: "svc"}},
			Upstreams:  []tenants.Upstream{{Name: "svc", Endpoints: []tenants.Endpoint{{Address: "127.0.0.1", Port: port}}}},
		},
	}
}

type statusLog struct {
	mu  sync.Mutex
	got []tenants.Status
}

func (l *statusLog) WriteStatus(_ context.Context, st tenants.Status) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, st)
	return nil
}

func (l *statusLog) last(id string) (tenants.Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.got) - 1; i >= 0; i-- {
		if l.got[i].Tenant == id {
			return l.got[i], true
		}
	}
	return tenants.Status{}, false
}

// serve starts a Server on a loopback gRPC listener.
func serve(t *testing.T) (*Server, *grpc.ClientConn, *statusLog) {
	t.Helper()
	st := &statusLog{}
	s := New(Options{Status: st})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("status writer: %v", err)
		}
	}()
	addr := grpctest.Serve(t, s.Register)
	conn := grpctest.Dial(t, addr, nil)
	return s, conn, st
}

func edgeNode(id string) *corev3.Node {
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("edge")}}}
}

// openEdge opens an ADS stream as edge node e1 and subscribes every type
// as a wildcard, VHDS in the named form (the route configuration's name).
// Envoy itself subscribes VHDS with no names: TestVHDSSubscriptionAsEnvoySendsIt.
func openEdge(ctx context.Context, t *testing.T, conn grpc.ClientConnInterface, delta bool) *adsclient.Client {
	t.Helper()
	c, err := adsclient.Open(ctx, conn, edgeNode("e1"), delta)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType} {
		if err := c.Subscribe(typ); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Subscribe(resourcev3.VirtualHostType, "edge-routes"); err != nil {
		t.Fatal(err)
	}
	return c
}

// recv reads updates until one of typeURL arrives, ACKing the others.
func recv(t *testing.T, c *adsclient.Client, typeURL string, timeout time.Duration) *adsclient.Update {
	t.Helper()
	type res struct {
		u   *adsclient.Update
		err error
	}
	deadline := time.After(timeout)
	for {
		ch := make(chan res, 1)
		go func() { u, err := c.Recv(); ch <- res{u, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("recv: %v", r.err)
			}
			if r.u.TypeURL == typeURL {
				return r.u
			}
			if err := c.Ack(r.u); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("no %s update within %v", typeURL, timeout)
			return nil
		}
	}
}

func TestStreamsWaitForFirstCompleteConfiguration(t *testing.T) {
	s, conn, _ := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := adsclient.Open(ctx, conn, edgeNode("e1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	got := make(chan *adsclient.Update, 1)
	go func() {
		u, err := c.Recv()
		if err == nil {
			got <- u
		}
	}()
	select {
	case u := <-got:
		t.Fatalf("a response (%d clusters) before any configuration existed", len(u.Resources))
	case <-time.After(300 * time.Millisecond):
	}
	if s.Ready() == nil {
		t.Fatal("Ready() before the first catalog")
	}
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)}}, nil)
	s.Update(cat)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready after update: %v", err)
	}
	select {
	case u := <-got:
		for _, want := range []string{"tenant-a.svc", "tenant-b.svc", "tenantmesh-authz", "tenantmesh-ratelimit"} {
			if _, ok := u.Resources[want]; !ok {
				t.Errorf("first response lacks cluster %s; has %v", want, keys(u.Resources))
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response after the first catalog")
	}
}

func TestOneTenantChangeSendsOnlyThatTenant(t *testing.T) {
	s, conn, _ := serve(t)
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
	s.Update(cat)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := adsclient.Open(ctx, conn, edgeNode("e1"), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType} {
		if err := c.Subscribe(typ); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		u, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ack(u); err != nil {
			t.Fatal(err)
		}
	}

	// Only tenant-a's endpoint moves; tenant-b is the same object.
	a2 := tenant("tenant-a", 9011, 8)
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 8, Tenants: []*tenants.Tenant{a2, b}}, cat))
	u := recv(t, c, resourcev3.EndpointType, 10*time.Second)
	if len(u.Resources) != 1 || u.Resources["tenant-a.svc"] == nil {
		t.Fatalf("endpoint update carries %v, want only tenant-a.svc", keys(u.Resources))
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := u.Resources["tenant-a.svc"].UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	port := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
	if port != 9011 {
		t.Fatalf("tenant-a endpoint port %d, want 9011", port)
	}
}

func TestNACKRollsBackOnlyTheNamedTenant(t *testing.T) {
	s, conn, st := serve(t)
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
	s.Update(cat)
	clusterUpdates := make(chan *adsclient.Update, 16)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := openEdge(ctx, t, conn, false)
	first := recv(t, c, resourcev3.ClusterType, 10*time.Second)
	if err := c.Ack(first); err != nil {
		t.Fatal(err)
	}
	go drainOthers(ctx, c, resourcev3.ClusterType, clusterUpdates)
	waitStatus(t, st, "tenant-a", tenants.StateAccepted)
	waitStatus(t, st, "tenant-b", tenants.StateAccepted)

	// Both tenants change their clusters; the proxy rejects tenant-a's.
	a2, b2 := tenant("tenant-a", 9001, 8), tenant("tenant-b", 9002, 9)
	a2.Spec.Upstreams[0].ConnectTimeout = "3s"
	b2.Spec.Upstreams[0].ConnectTimeout = "4s"
	cat2 := tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{a2, b2}}, cat)
	s.Update(cat2)
	bad := next(t, clusterUpdates)
	if got := connectTimeout(t, bad, "tenant-a.svc"); got != 3*time.Second {
		t.Fatalf("tenant-a connect timeout %v before the NACK, want 3s", got)
	}
	if err := c.Nack(bad, "Error adding/updating cluster(s) tenant-a.svc: something Envoy dislikes"); err != nil {
		t.Fatal(err)
	}
	fixed := next(t, clusterUpdates)
	if got := connectTimeout(t, fixed, "tenant-a.svc"); got != 2*time.Second {
		t.Errorf("tenant-a connect timeout %v after the NACK, want its accepted 2s", got)
	}
	if got := connectTimeout(t, fixed, "tenant-b.svc"); got != 4*time.Second {
		t.Errorf("tenant-b connect timeout %v, want its new 4s (not rolled back)", got)
	}
	if err := c.Ack(fixed); err != nil {
		t.Fatal(err)
	}
	rej := waitStatus(t, st, "tenant-a", tenants.StateRejected)
	if rej.Message == "" {
		t.Error("rejected status has no message")
	}
	waitStatus(t, st, "tenant-b", tenants.StateAccepted)

	// The same rejected tenant object stays rolled back on unrelated updates;
	// a new version of it is tried again.
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 10, Tenants: []*tenants.Tenant{a2, b2}}, cat2))
	a3 := tenant("tenant-a", 9001, 11)
	a3.Spec.Upstreams[0].ConnectTimeout = "5s"
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 11, Tenants: []*tenants.Tenant{a3, b2}}, cat2))
	retry := next(t, clusterUpdates)
	if got := connectTimeout(t, retry, "tenant-a.svc"); got != 5*time.Second {
		t.Errorf("tenant-a connect timeout %v after a new version, want 5s", got)
	}
}

func TestGroupEvictedWhenLastStreamCloses(t *testing.T) {
	s, conn, _ := serve(t)
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 3, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 2)}}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	node := &corev3.Node{Id: "g1", Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("grpc")}}}
	c, err := adsclient.Open(ctx, conn, node, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ListenerType, "tenant-a.svc"); err != nil {
		t.Fatal(err)
	}
	u := recv(t, c, resourcev3.ListenerType, 10*time.Second)
	if _, ok := u.Resources["tenant-a.svc"]; !ok {
		t.Fatalf("grpc node got listeners %v, want tenant-a.svc", keys(u.Resources))
	}
	if !hasGroup(s, "grpc") {
		t.Fatal("grpc group missing while its stream is open")
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for hasGroup(s, "grpc") {
		if time.Now().After(deadline) {
			t.Fatal("grpc group still cached after its only stream closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !hasGroup(s, edgeGroup) {
		t.Fatal("edge group must stay")
	}
}

func hasGroup(s *Server, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.groups[key]
	return ok
}

func waitStatus(t *testing.T, st *statusLog, id, state string) tenants.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s, ok := st.last(id); ok && s.State == state {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, _ := st.last(id)
	t.Fatalf("tenant %s status %+v, want %s", id, s, state)
	return tenants.Status{}
}

func connectTimeout(t *testing.T, u *adsclient.Update, name string) time.Duration {
	t.Helper()
	a, ok := u.Resources[name]
	if !ok {
		t.Fatalf("no cluster %s in %v", name, keys(u.Resources))
	}
	c := &clusterv3.Cluster{}
	if err := a.UnmarshalTo(c); err != nil {
		t.Fatal(err)
	}
	return c.GetConnectTimeout().AsDuration()
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// drainOthers ACKs every update but those of typeURL, which it hands to out
// unanswered (the test decides between ACK and NACK).
func drainOthers(ctx context.Context, c *adsclient.Client, typeURL string, out chan<- *adsclient.Update) {
	for ctx.Err() == nil {
		u, err := c.Recv()
		if err != nil {
			return
		}
		if u.TypeURL == typeURL {
			out <- u
			continue
		}
		if err := c.Ack(u); err != nil {
			return
		}
	}
}

func next(t *testing.T, ch <-chan *adsclient.Update) *adsclient.Update {
	t.Helper()
	select {
	case u := <-ch:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10s")
		return nil
	}
}

// TestLocalLimitChangeAloneRepublishesRoutes: the tenant's buckets live on
// its virtual host, so a change to nothing but its local limit resends
// that one virtual host — not edge-routes, not the other tenant's.
func TestLocalLimitChangeAloneRepublishesRoutes(t *testing.T) {
	s, conn, _ := serve(t)
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
	s.Update(cat)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := adsclient.Open(ctx, conn, edgeNode("e1"), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resourcev3.RouteType, resourcev3.VirtualHostType} {
		// One at a time, as Envoy does (VHDS after the route configuration):
		// recv ACKs and drops other types.
		var names []string
		if typ == resourcev3.VirtualHostType {
			names = []string{"edge-routes"}
		}
		if err := c.Subscribe(typ, names...); err != nil {
			t.Fatal(err)
		}
		first := recv(t, c, typ, 10*time.Second)
		if typ == resourcev3.VirtualHostType && len(first.Resources) != 2 {
			t.Fatalf("VHDS namespace subscription got %v, want both tenants' virtual hosts", keys(first.Resources))
		}
		if err := c.Ack(first); err != nil {
			t.Fatal(err)
		}
	}
	a2 := tenant("tenant-a", 9001, 8)
	a2.Spec.RateLimits = &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: 7, Per: tenants.UnitSecond}}
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 8, Tenants: []*tenants.Tenant{a2, b}}, cat))
	u := recv(t, c, resourcev3.VirtualHostType, 10*time.Second)
	if len(u.Resources) != 1 || u.Resources["edge-routes/tenant-a"] == nil {
		t.Fatalf("virtual host update carries %v, want only edge-routes/tenant-a", keys(u.Resources))
	}
	vh := &routev3.VirtualHost{}
	if err := u.Resources["edge-routes/tenant-a"].UnmarshalTo(vh); err != nil {
		t.Fatal(err)
	}
	// The buckets live in edge-http's filter config (a route table rebuild
	// would refill them); the routes name the new limit.
	limit := vh.GetRoutes()[0].GetMetadata().GetFilterMetadata()[translate.MetadataNamespace].GetFields()[translate.KeyLocalLimit].GetStringValue()
	if limit != "7/second+0" {
		t.Errorf("tenant-a's route names local limit %q, want 7/second+0", limit)
	}
}

func TestTenantThatFailsTranslationDoesNotBlockOthers(t *testing.T) {
	s, conn, st := serve(t)
	// Valid as a manifest, but a proxyless gRPC client cannot use two DNS
	// names: the grpc role's translation of tenant-a fails.
	bad := tenant("tenant-a", 9001, 5)
	bad.Spec.Upstreams[0].Endpoints = []tenants.Endpoint{{Address: "a.example.com", Port: 80}, {Address: "b.example.com", Port: 80}}
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{bad, tenant("tenant-b", 9002, 6)}}, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node := &corev3.Node{Id: "g1", Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("grpc")}}}
	c, err := adsclient.Open(ctx, conn, node, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ListenerType); err != nil {
		t.Fatal(err)
	}
	u := recv(t, c, resourcev3.ListenerType, 10*time.Second)
	if _, ok := u.Resources["tenant-b.svc"]; !ok {
		t.Fatalf("tenant-b's listener missing: %v", keys(u.Resources))
	}
	if _, ok := u.Resources["tenant-a.svc"]; ok {
		t.Fatal("tenant-a's untranslatable listener was published")
	}
	rej := waitStatus(t, st, "tenant-a", tenants.StateRejected)
	if !strings.Contains(rej.Message, "translation") {
		t.Errorf("status message %q does not say translation failed", rej.Message)
	}
}

// routeTimeout is the timeout of the first route of a VHDS virtual host.
func routeTimeout(t *testing.T, u *adsclient.Update, name string) time.Duration {
	t.Helper()
	a, ok := u.Resources[name]
	if !ok {
		t.Fatalf("no virtual host %s in %v", name, keys(u.Resources))
	}
	vh := &routev3.VirtualHost{}
	if err := a.UnmarshalTo(vh); err != nil {
		t.Fatal(err)
	}
	return vh.GetRoutes()[0].GetRoute().GetTimeout().AsDuration()
}

// TestVirtualHostNACKRollsBackOnlyThatTenant: VHDS over delta ADS, as an
// Envoy edge uses it. Two tenants change their routes in one version; the
// proxy rejects tenant-a's virtual host. tenant-a goes back to its accepted
// routes, tenant-b keeps its change, and each gets its status.
func TestVirtualHostNACKRollsBackOnlyThatTenant(t *testing.T) {
	s, conn, st := serve(t)
	a, b := tenant("tenant-a", 9001, 5), tenant("tenant-b", 9002, 6)
	a.Spec.Routes[0].Timeout, b.Spec.Routes[0].Timeout = "2s", "2s"
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a, b}}, nil)
	s.Update(cat)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := openEdge(ctx, t, conn, true)
	vhosts := make(chan *adsclient.Update, 16)
	go drainOthers(ctx, c, resourcev3.VirtualHostType, vhosts)
	first := next(t, vhosts)
	if len(first.Resources) != 2 {
		t.Fatalf("initial virtual hosts %v, want tenant-a's and tenant-b's", keys(first.Resources))
	}
	if err := c.Ack(first); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, st, "tenant-a", tenants.StateAccepted)
	waitStatus(t, st, "tenant-b", tenants.StateAccepted)

	a2, b2 := tenant("tenant-a", 9001, 8), tenant("tenant-b", 9002, 9)
	a2.Spec.Routes[0].Timeout, b2.Spec.Routes[0].Timeout = "3s", "4s"
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 9, Tenants: []*tenants.Tenant{a2, b2}}, cat))
	bad := next(t, vhosts)
	if got := routeTimeout(t, bad, "edge-routes/tenant-a"); got != 3*time.Second {
		t.Fatalf("tenant-a route timeout %v before the NACK, want 3s", got)
	}
	if err := c.Nack(bad, "Error adding/updating virtual host edge-routes/tenant-a: something Envoy dislikes"); err != nil {
		t.Fatal(err)
	}
	fixed := next(t, vhosts)
	if got := routeTimeout(t, fixed, "edge-routes/tenant-a"); got != 2*time.Second {
		t.Errorf("tenant-a route timeout %v after the NACK, want its accepted 2s", got)
	}
	if _, resent := fixed.Resources["edge-routes/tenant-b"]; resent {
		t.Error("the rollback resent tenant-b's virtual host")
	}
	if err := c.Ack(fixed); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, st, "tenant-a", tenants.StateRejected)
	waitStatus(t, st, "tenant-b", tenants.StateAccepted)
}
