package xds

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

const testTD = "xds.test"

// mtlsServer is a Server behind a real gRPC server over mutual TLS, with
// certificates of a dev CA (the library behind `tenantmesh certs`).
type mtlsServer struct {
	s    *Server
	addr string
	ca   *devca.CA
	reg  *prometheus.Registry
	logs *syncBuffer
}

// serveMTLS serves tenant-a and tenant-b (upstream svc each, tenant-a with
// a global limit) with identities required. clientAuth is the handshake's
// policy (tls.RequireAndVerifyClientCert as serve runs it).
func serveMTLS(t *testing.T, opts Options, clientAuth tls.ClientAuthType) *mtlsServer {
	t.Helper()
	ca, err := devca.NewCA(testTD, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m := &mtlsServer{ca: ca, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	opts.Registerer, opts.Logger = m.reg, slog.New(slog.NewJSONHandler(m.logs, nil))
	opts.RequireIdentity = true
	if opts.TrustDomain == "" {
		opts.TrustDomain = testTD
	}
	m.s = New(opts)
	a := tenant("tenant-a", 9001, 2)
	a.Spec.RateLimits = &tenants.RateLimits{Global: []tenants.GlobalRateLimit{{Requests: 5, Per: tenants.UnitMinute}}}
	m.s.Update(tenants.NewCatalog(tenants.Input{Revision: 3, Tenants: []*tenants.Tenant{a, tenant("tenant-b", 9002, 3)}}, nil))

	m.addr = serveTLS(t, m.s, ca, testTD, clientAuth)
	return m
}

// dialAs connects with a client certificate for id issued by issuer (nil:
// no certificate), trusting the server's CA.
func (m *mtlsServer) dialAs(t *testing.T, issuer *devca.CA, id identity.ID) *grpc.ClientConn {
	t.Helper()
	return dialTLS(t, m.addr, m.ca, issuer, id)
}

// rejections is tenantmesh_xds_identity_rejections_total{reason}.
func (m *mtlsServer) rejections(t *testing.T, reason string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tenantmesh_xds_identity_rejections_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if mt.GetLabel()[0].GetValue() == reason {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func sidecarNode(id, tenant, service string, appPort int) *corev3.Node {
	f := map[string]*structpb.Value{"role": structpb.NewStringValue("sidecar")}
	if tenant != "" {
		f["tenant"] = structpb.NewStringValue(tenant)
	}
	if service != "" {
		f["service"] = structpb.NewStringValue(service)
	}
	if appPort != 0 {
		f["appPort"] = structpb.NewNumberValue(float64(appPort))
	}
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: f}}
}

// firstResponse opens a stream as node, subscribes typ and returns its
// first response, or the error that closed the stream instead.
func firstResponse(ctx context.Context, t *testing.T, conn *grpc.ClientConn, node *corev3.Node, delta bool, typ string) (*adsclient.Update, *adsclient.Client, error) {
	t.Helper()
	c, err := adsclient.Open(ctx, conn, node, delta)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Subscribe(typ); err != nil {
		// A stream the server ended at once fails Send with io.EOF; its
		// status comes with Recv.
		_, rerr := c.Recv()
		return nil, c, rerr
	}
	u, err := c.Recv()
	return u, c, err
}

func wantRefused(t *testing.T, what string, u *adsclient.Update, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got update %v, err %v; want %s", what, u != nil, err, code)
	}
}

// TestSidecarCertificateIsBoundToItsTenant: a sidecar certificate of
// tenant-a asking as tenant-b is refused and receives nothing; asking as
// tenant-a, or naming no tenant at all, it gets tenant-a's configuration.
func TestSidecarCertificateIsBoundToItsTenant(t *testing.T) {
	m := serveMTLS(t, Options{}, tls.RequireAndVerifyClientCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := identity.Service(testTD, "tenant-a", "svc")
	conn := m.dialAs(t, m.ca, id)

	for _, delta := range []bool{false, true} {
		u, _, err := firstResponse(ctx, t, conn, sidecarNode("spoof-1", "tenant-b", "svc", 8080), delta, resourcev3.ClusterType)
		wantRefused(t, "tenant-a certificate as tenant-b", u, err, codes.PermissionDenied)
	}
	if got := m.rejections(t, rejectTenant); got != 2 {
		t.Errorf("rejections{reason=tenant} = %v, want 2", got)
	}
	if hasGroup(m.s, "sidecar/tenant-b/svc/8080") {
		t.Error("the refused stream built tenant-b's sidecar group")
	}
	if logs := m.logs.String(); !strings.Contains(logs, `"node":"spoof-1"`) || !strings.Contains(logs, id.String()) ||
		!strings.Contains(logs, `"reason":"tenant"`) {
		t.Errorf("refusal log lacks node, identity or reason:\n%s", logs)
	}

	u, _, err := firstResponse(ctx, t, conn, sidecarNode("a-1", "tenant-a", "svc", 8080), false, resourcev3.ClusterType)
	if err != nil {
		t.Fatalf("tenant-a certificate as tenant-a: %v", err)
	}
	if len(u.Resources) == 0 {
		t.Fatal("tenant-a's sidecar received no clusters")
	}
	for name := range u.Resources {
		if strings.Contains(name, "tenant-b") {
			t.Errorf("tenant-a's sidecar received %s", name)
		}
	}

	// No role, tenant or service in the metadata: the certificate says.
	bare := &corev3.Node{Id: "a-2", Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"appPort": structpb.NewNumberValue(8080)}}}
	u2, _, err := firstResponse(ctx, t, conn, bare, true, resourcev3.ClusterType)
	if err != nil {
		t.Fatalf("node without metadata: %v", err)
	}
	if len(u2.Resources) != len(u.Resources) {
		t.Errorf("node without metadata got %d clusters, the tenant-a sidecar %d", len(u2.Resources), len(u.Resources))
	}
	n, ok := nodeByID(m.s.Debug(), "a-2")
	if !ok || n.Role != "sidecar" || n.Tenant != "tenant-a" || n.Service != "svc" || n.Identity != id.String() ||
		n.Group != "sidecar/tenant-a/svc/8080" {
		t.Errorf("/debug/xds row of the bare node: %+v", n)
	}
}

// TestEdgeCertificateCannotClaimAnotherRole: an edge certificate claiming
// role sidecar (or a tenant) is refused; with no role it is an edge.
func TestEdgeCertificateCannotClaimAnotherRole(t *testing.T) {
	m := serveMTLS(t, Options{}, tls.RequireAndVerifyClientCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := m.dialAs(t, m.ca, identity.Edge(testTD, "edge-1"))
	u, _, err := firstResponse(ctx, t, conn, sidecarNode("e-1", "tenant-a", "svc", 8080), true, resourcev3.ClusterType)
	wantRefused(t, "edge certificate as a sidecar", u, err, codes.PermissionDenied)
	if got := m.rejections(t, rejectRole); got != 1 {
		t.Errorf("rejections{reason=role} = %v, want 1", got)
	}
	grpcNode := &corev3.Node{Id: "e-2", Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("grpc")}}}
	u, _, err = firstResponse(ctx, t, conn, grpcNode, false, resourcev3.ClusterType)
	wantRefused(t, "edge certificate as grpc", u, err, codes.PermissionDenied)
	if hasGroup(m.s, "grpc") || hasGroup(m.s, "sidecar/tenant-a/svc/8080") {
		t.Error("a refused stream built a group")
	}
	if _, _, err := firstResponse(ctx, t, conn, &corev3.Node{Id: "e-3"}, true, resourcev3.ClusterType); err != nil {
		t.Fatalf("edge certificate without metadata: %v", err)
	}
	if n, ok := nodeByID(m.s.Debug(), "e-3"); !ok || n.Role != "edge" || n.Identity != "spiffe://xds.test/edge/edge-1" {
		t.Errorf("/debug/xds row: %+v", n)
	}
}

// TestIdentityMustBeOfTheTrustDomainAndAClient: a client without a
// certificate that the handshake let through, a certificate of another
// trust domain and the control plane's own ID are refused.
func TestIdentityMustBeOfTheTrustDomainAndAClient(t *testing.T) {
	// Client certificates optional in the handshake: the server itself
	// must refuse a stream without an identity.
	m := serveMTLS(t, Options{}, tls.VerifyClientCertIfGiven)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, _, err := firstResponse(ctx, t, m.dialAs(t, nil, identity.ID{}), edgeNode("anon"), true, resourcev3.ClusterType)
	wantRefused(t, "no client certificate", u, err, codes.PermissionDenied)
	if got := m.rejections(t, rejectNoIdentity); got != 1 {
		t.Errorf("rejections{reason=no_identity} = %v, want 1", got)
	}

	u, _, err = firstResponse(ctx, t, m.dialAs(t, m.ca, identity.ControlPlane(testTD)), edgeNode("cp"), false, resourcev3.ClusterType)
	wantRefused(t, "the control plane's ID as a client", u, err, codes.PermissionDenied)
	if got := m.rejections(t, rejectKind); got != 1 {
		t.Errorf("rejections{reason=kind} = %v, want 1", got)
	}

	other := serveMTLS(t, Options{TrustDomain: "other.test"}, tls.RequireAndVerifyClientCert)
	u, _, err = firstResponse(ctx, t, other.dialAs(t, other.ca, identity.Edge(testTD, "edge-1")), edgeNode("e"), true, resourcev3.ClusterType)
	wantRefused(t, "identity of another trust domain", u, err, codes.PermissionDenied)
	if got := other.rejections(t, rejectTrustDomain); got != 1 {
		t.Errorf("rejections{reason=trust_domain} = %v, want 1", got)
	}
}

// TestStreamsPerIdentityAreBounded: beyond the bound a stream is refused
// with ResourceExhausted; another identity is not affected, and a closed
// stream frees its place.
func TestStreamsPerIdentityAreBounded(t *testing.T) {
	m := serveMTLS(t, Options{MaxStreamsPerIdentity: 2}, tls.RequireAndVerifyClientCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := m.dialAs(t, m.ca, identity.Edge(testTD, "edge-1"))
	firstCtx, closeFirst := context.WithCancel(ctx)
	defer closeFirst()
	if _, _, err := firstResponse(firstCtx, t, conn, edgeNode("e-1"), true, resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	if _, _, err := firstResponse(ctx, t, conn, edgeNode("e-2"), false, resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	u, _, err := firstResponse(ctx, t, conn, edgeNode("e-3"), true, resourcev3.ClusterType)
	wantRefused(t, "third stream of one identity", u, err, codes.ResourceExhausted)
	if got := m.rejections(t, rejectStreamsPerIdent); got != 1 {
		t.Errorf("rejections{reason=streams_per_identity} = %v, want 1", got)
	}
	if _, _, err := firstResponse(ctx, t, m.dialAs(t, m.ca, identity.Edge(testTD, "edge-2")), edgeNode("f-1"), true, resourcev3.ClusterType); err != nil {
		t.Fatalf("another identity: %v", err)
	}
	closeFirst()
	eventually(t, "the closed stream's place is free", func() bool {
		_, _, err := firstResponse(ctx, t, conn, edgeNode("e-4"), true, resourcev3.ClusterType)
		return err == nil
	})
}

// TestGroupsPerIdentityAreBounded: one sidecar identity may spread over at
// most the bound of groups (here app ports); a stream into a group it
// already has is still admitted.
func TestGroupsPerIdentityAreBounded(t *testing.T) {
	m := serveMTLS(t, Options{MaxGroupsPerIdentity: 2}, tls.RequireAndVerifyClientCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := m.dialAs(t, m.ca, identity.Service(testTD, "tenant-a", "svc"))
	for _, port := range []int{8081, 8082} {
		if _, _, err := firstResponse(ctx, t, conn, sidecarNode("a", "tenant-a", "svc", port), true, resourcev3.ClusterType); err != nil {
			t.Fatalf("app port %d: %v", port, err)
		}
	}
	u, _, err := firstResponse(ctx, t, conn, sidecarNode("a", "tenant-a", "svc", 8083), false, resourcev3.ClusterType)
	wantRefused(t, "third group of one identity", u, err, codes.ResourceExhausted)
	if got := m.rejections(t, rejectGroupsPerIdent); got != 1 {
		t.Errorf("rejections{reason=groups_per_identity} = %v, want 1", got)
	}
	if hasGroup(m.s, "sidecar/tenant-a/svc/8083") {
		t.Error("the refused stream built its group")
	}
	if _, _, err := firstResponse(ctx, t, conn, sidecarNode("a", "tenant-a", "svc", 8081), false, resourcev3.ClusterType); err != nil {
		t.Fatalf("another stream into a group the identity has: %v", err)
	}
}

// TestRateLimitConfigOnlyForRatelimitAndEdges: the ratelimit identity
// receives its RateLimitConfig and nothing else; a sidecar identity may
// not read it (it holds every tenant's limits).
func TestRateLimitConfigOnlyForRatelimitAndEdges(t *testing.T) {
	m := serveMTLS(t, Options{}, tls.RequireAndVerifyClientCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rl := m.dialAs(t, m.ca, identity.Ratelimit(testTD, "ratelimit"))
	// envoyproxy/ratelimit sends a bare node id.
	u, _, err := firstResponse(ctx, t, rl, &corev3.Node{Id: "ratelimit"}, false, RateLimitConfigType)
	if err != nil || len(u.Resources) == 0 {
		t.Fatalf("ratelimit identity asking for RateLimitConfig: %v, %v", u, err)
	}
	u, _, err = firstResponse(ctx, t, rl, &corev3.Node{Id: "ratelimit"}, false, resourcev3.ClusterType)
	wantRefused(t, "ratelimit identity asking for clusters", u, err, codes.PermissionDenied)
	u, _, err = firstResponse(ctx, t, rl, edgeNode("ratelimit"), false, RateLimitConfigType)
	wantRefused(t, "ratelimit identity claiming role edge", u, err, codes.PermissionDenied)

	sc := m.dialAs(t, m.ca, identity.Service(testTD, "tenant-a", "svc"))
	u, _, err = firstResponse(ctx, t, sc, sidecarNode("a", "tenant-a", "svc", 8080), true, RateLimitConfigType)
	wantRefused(t, "sidecar identity asking for RateLimitConfig", u, err, codes.PermissionDenied)
	if got := m.rejections(t, rejectType); got != 2 {
		t.Errorf("rejections{reason=type} = %v, want 2", got)
	}
	edge := m.dialAs(t, m.ca, identity.Edge(testTD, "debug"))
	if _, _, err := firstResponse(ctx, t, edge, edgeNode("debug"), true, RateLimitConfigType); err != nil {
		t.Fatalf("edge identity asking for RateLimitConfig (xds dump --ratelimit): %v", err)
	}
}

// TestLaterRequestCannotChangeTheNode: SotW requests may carry the node
// again; one that names another tenant, or moves the stream to another
// group, closes the stream.
func TestLaterRequestCannotChangeTheNode(t *testing.T) {
	m := serveMTLS(t, Options{}, tls.RequireAndVerifyClientCert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := m.dialAs(t, m.ca, identity.Service(testTD, "tenant-a", "svc"))
	// The group the stream moves to exists: its watches would be served.
	if _, _, err := firstResponse(ctx, t, conn, sidecarNode("a", "tenant-a", "svc", 9090), true, resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	for reason, later := range map[string]*corev3.Node{
		rejectTenant:      sidecarNode("a", "tenant-b", "svc", 8080),
		rejectNodeChanged: sidecarNode("a", "tenant-a", "svc", 9090),
	} {
		str, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := str.Send(&discoverygrpc.DiscoveryRequest{Node: sidecarNode("a", "tenant-a", "svc", 8080), TypeUrl: resourcev3.ClusterType}); err != nil {
			t.Fatal(err)
		}
		first, err := str.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := str.Send(&discoverygrpc.DiscoveryRequest{Node: later, TypeUrl: resourcev3.ClusterType, VersionInfo: first.GetVersionInfo(),
			ResponseNonce: first.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		if err := str.Send(&discoverygrpc.DiscoveryRequest{Node: later, TypeUrl: resourcev3.ListenerType}); err != nil {
			t.Fatal(err)
		}
		resp, err := str.Recv()
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s: later request: response %v, err %v; want PermissionDenied", reason, resp != nil, err)
		}
		if got := m.rejections(t, reason); got != 1 {
			t.Errorf("rejections{reason=%s} = %v, want 1", reason, got)
		}
	}
	if hasGroup(m.s, "sidecar/tenant-b/svc/8080") {
		t.Error("a node changed to tenant-b got a group")
	}
}

// TestWithoutIdentityMetadataDecides: without RequireIdentity (plaintext
// on loopback) a node is what its metadata says, and /debug/xds shows no
// identity.
func TestWithoutIdentityMetadataDecides(t *testing.T) {
	s, conn, _, _ := serveRegistered(t)
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 4, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 2), tenant("tenant-b", 9002, 4)}}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := firstResponse(ctx, t, conn, sidecarNode("b-1", "tenant-b", "svc", 8080), true, resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	n, ok := nodeByID(s.Debug(), "b-1")
	if !ok || n.Tenant != "tenant-b" || n.Identity != "" {
		t.Errorf("/debug/xds row: %+v", n)
	}
}

// TestDeltaNACKNamesTheNode: a delta stream carries its node on the first
// request only; the status of a tenant it rejects later still names it.
func TestDeltaNACKNamesTheNode(t *testing.T) {
	s, conn, st := serve(t)
	a := tenant("tenant-a", 9001, 5)
	cat := tenants.NewCatalog(tenants.Input{Revision: 7, Tenants: []*tenants.Tenant{a}}, nil)
	s.Update(cat)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := openEdge(ctx, t, conn, true)
	first := recv(t, c, resourcev3.ClusterType, 10*time.Second)
	if err := c.Ack(first); err != nil {
		t.Fatal(err)
	}
	clusterUpdates := make(chan *adsclient.Update, 16)
	go drainOthers(ctx, c, resourcev3.ClusterType, clusterUpdates)
	waitStatus(t, st, "tenant-a", tenants.StateAccepted)
	a2 := tenant("tenant-a", 9001, 8)
	a2.Spec.Upstreams[0].ConnectTimeout = "3s"
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 8, Tenants: []*tenants.Tenant{a2}}, cat))
	if err := c.Nack(next(t, clusterUpdates), "cluster tenant-a.svc: bad"); err != nil {
		t.Fatal(err)
	}
	rej := waitStatus(t, st, "tenant-a", tenants.StateRejected)
	if !strings.HasPrefix(rej.Message, "rejected by e1 (Cluster)") {
		t.Errorf("status message %q does not name node e1", rej.Message)
	}
}

// TestBadNodeLeavesNoGroup: a node whose group cannot be built (a sidecar
// without an app port) is refused, and its group is not left behind to be
// synced on every change.
func TestBadNodeLeavesNoGroup(t *testing.T) {
	s, conn, _, _ := serveRegistered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, port := range []int{-1, 70000} {
		if _, _, err := firstResponse(ctx, t, conn, sidecarNode("bad", "tenant-a", "svc", port), true, resourcev3.ClusterType); err == nil {
			t.Fatalf("sidecar with app port %d was served", port)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.groups {
		if key != edgeGroup {
			t.Errorf("group %s left behind", key)
		}
	}
}
