package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func edgeOptions() Options {
	return Options{NodeID: "edge-1", Role: translate.RoleEdge, XDSAddress: "tenantmesh:18000"}
}

func sidecarOptions() Options {
	return Options{NodeID: "sidecar-tenant-a-executive", Role: translate.RoleSidecar, Tenant: "tenant-a",
		Service: "executive", AppPort: 8080, XDSAddress: "tenantmesh:18000", AdminPort: 9902}
}

// golden compares got with testdata/name (or rewrites it with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./envoy/bootstrap -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the builder's output (go test ./envoy/bootstrap -update if intended):\n--- got\n%s", path, got)
	}
}

func TestGoldenEnvoyBootstraps(t *testing.T) {
	// SotW is a sidecar's option only (an edge refuses it: TestEdgeRefusesSotW).
	tlsSotw := sidecarOptions()
	tlsSotw.SotW = true
	tlsSotw.TLS = &TLSFiles{CA: "/etc/tenantmesh/ca.pem", Cert: "/etc/tenantmesh/client.pem", Key: "/etc/tenantmesh/client-key.pem"}
	// mTLS with the control plane's SPIFFE ID as the SAN checked, the
	// files where a Kubernetes TLS Secret puts them.
	edgeMTLS := edgeOptions()
	edgeMTLS.TLS = &TLSFiles{CA: "/etc/tenantmesh/tls/ca.crt", Cert: "/etc/tenantmesh/tls/tls.crt", Key: "/etc/tenantmesh/tls/tls.key",
		ServerSAN: "spiffe://tenantmesh.local/controlplane"}
	for name, o := range map[string]Options{
		"edge.yaml":             edgeOptions(),
		"edge-mtls.yaml":        edgeMTLS,
		"sidecar.yaml":          sidecarOptions(),
		"sidecar-tls-sotw.yaml": tlsSotw,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Envoy(o)
			if err != nil {
				t.Fatal(err)
			}
			// Every Any opened and validated, as Envoy does when it loads
			// the transport socket, protocol options and monitor.
			if err := validate.Deep(b); err != nil {
				t.Fatalf("bootstrap fails validate.Deep: %v", err)
			}
			y, err := YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, y)
			// What Envoy would load: the YAML, parsed strictly and validated.
			if _, err := ParseYAML(y); err != nil {
				t.Fatalf("generated bootstrap does not load: %v", err)
			}
		})
	}
}

// TestNodeIdentityRoundTrips checks the bootstrap's node through the
// control plane's own reader: what the bootstrap says is what translation
// keys on.
func TestNodeIdentityRoundTrips(t *testing.T) {
	for _, o := range []Options{edgeOptions(), sidecarOptions()} {
		b := mustEnvoy(t, o)
		y, err := YAML(b)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseYAML(y)
		if err != nil {
			t.Fatal(err)
		}
		got := translate.NodeFromProto(parsed.GetNode())
		want := translate.Node{ID: o.NodeID, Role: o.Role, Tenant: o.Tenant, Service: o.Service, AppPort: o.AppPort}
		if got != want {
			t.Errorf("node read back as %+v, want %+v", got, want)
		}
	}
	if c := mustEnvoy(t, sidecarOptions()).GetNode().GetCluster(); c != "tenant-a.executive" {
		t.Errorf("sidecar node cluster %q, want the service it fronts, tenant-a.executive", c)
	}
	if c := mustEnvoy(t, edgeOptions()).GetNode().GetCluster(); c != "tenantmesh-edge" {
		t.Errorf("edge node cluster %q, want tenantmesh-edge", c)
	}
}

func mustEnvoy(t *testing.T, o Options) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := Envoy(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestADSProtocolAndSources(t *testing.T) {
	delta := mustEnvoy(t, edgeOptions()).GetDynamicResources()
	if got := delta.GetAdsConfig().GetApiType(); got != corev3.ApiConfigSource_DELTA_GRPC {
		t.Errorf("default api_type %v, want DELTA_GRPC", got)
	}
	o := sidecarOptions()
	o.SotW = true
	if got := mustEnvoy(t, o).GetDynamicResources().GetAdsConfig().GetApiType(); got != corev3.ApiConfigSource_GRPC {
		t.Errorf("sidecar --sotw api_type %v, want GRPC", got)
	}
	ads := delta.GetAdsConfig()
	if !ads.GetSetNodeOnFirstMessageOnly() || ads.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		t.Errorf("ads_config %v: want V3 and set_node_on_first_message_only", ads)
	}
	g := ads.GetGrpcServices()[0].GetEnvoyGrpc()
	if g.GetClusterName() != XDSClusterName || g.GetRetryPolicy().GetRetryBackOff().GetBaseInterval().AsDuration() != XDSRetryBaseInterval {
		t.Errorf("ads grpc service %v: want cluster %s with retry back-off", g, XDSClusterName)
	}
	for name, src := range map[string]*corev3.ConfigSource{"lds": delta.GetLdsConfig(), "cds": delta.GetCdsConfig()} {
		if src.GetAds() == nil || src.GetResourceApiVersion() != corev3.ApiVersion_V3 {
			t.Errorf("%s_config %v: want ads {} with resource_api_version V3", name, src)
		}
	}
}

// TestEdgeRefusesSotW: an edge takes its tenants' routes by VHDS, and
// Envoy only creates a VHDS subscription over delta xDS
// (source/common/router/vhds.cc, createVhdsSubscription: the config source
// must be DELTA_GRPC, or ADS with a DELTA_GRPC ads_config). A SotW edge
// would start and serve nothing but 404s, so the option is refused.
func TestEdgeRefusesSotW(t *testing.T) {
	o := edgeOptions()
	o.SotW = true
	_, err := Envoy(o)
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("edge with SotW: err %v, want ErrInvalidOptions", err)
	}
	if !strings.Contains(err.Error(), "VHDS") || !strings.Contains(err.Error(), "--sotw") {
		t.Errorf("error %q does not say why (VHDS) or what to change (--sotw)", err)
	}
	if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Validate accepts an edge with SotW: %v", err)
	}
}

func TestXDSCluster(t *testing.T) {
	cluster := func(o Options) *clusterv3.Cluster {
		return mustEnvoy(t, o).GetStaticResources().GetClusters()[0]
	}
	byName := cluster(edgeOptions())
	if byName.GetType() != clusterv3.Cluster_STRICT_DNS || byName.GetTransportSocket() != nil {
		t.Errorf("xds cluster for a host name: type %v, transport socket %v; want STRICT_DNS, plaintext", byName.GetType(), byName.GetTransportSocket())
	}
	var proto httpv3.HttpProtocolOptions
	if err := byName.GetTypedExtensionProtocolOptions()[envoy.HTTPProtocolOptions].UnmarshalTo(&proto); err != nil {
		t.Fatal(err)
	}
	if ka := proto.GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive(); ka.GetInterval() == nil || ka.GetTimeout() == nil {
		t.Errorf("xds cluster HTTP/2 keepalive %v: want interval and timeout", ka)
	}

	o := edgeOptions()
	o.XDSAddress = "10.0.0.7:18000"
	if got := cluster(o).GetType(); got != clusterv3.Cluster_STATIC {
		t.Errorf("xds cluster for an IP: type %v, want STATIC", got)
	}

}

// upstreamTLSOf is the xds cluster's TLS context for o.
func upstreamTLSOf(t *testing.T, o Options) *tlsv3.UpstreamTlsContext {
	t.Helper()
	ts := mustEnvoy(t, o).GetStaticResources().GetClusters()[0].GetTransportSocket()
	var tc tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&tc); err != nil {
		t.Fatalf("transport socket %v: %v", ts, err)
	}
	return &tc
}

// TestXDSClusterChecksTheServerSAN: whatever the address, the Envoy
// checks a SAN of the server (any certificate of the CA would otherwise
// pass as the control plane), TLS 1.3 is allowed (an Envoy client's
// default maximum is 1.2: common.proto, TlsParameters), and the client
// certificate is presented when given.
func TestXDSClusterChecksTheServerSAN(t *testing.T) {
	for name, tc := range map[string]struct {
		address, san string
		wantType     tlsv3.SubjectAltNameMatcher_SanType
		wantSAN      string
		wantSNI      string
	}{
		"host name":          {"tenantmesh:18000", "", tlsv3.SubjectAltNameMatcher_DNS, "tenantmesh", "tenantmesh"},
		"IPv4":               {"10.0.0.7:18000", "", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "10.0.0.7", ""},
		"IPv6":               {"[fd00::7]:18000", "", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "fd00::7", ""},
		"SPIFFE ID":          {"tenantmesh:18000", "spiffe://tenantmesh.local/controlplane", tlsv3.SubjectAltNameMatcher_URI, "spiffe://tenantmesh.local/controlplane", "tenantmesh"},
		"DNS name by IP":     {"10.0.0.7:18000", "xds.example.com", tlsv3.SubjectAltNameMatcher_DNS, "xds.example.com", "xds.example.com"},
		"IP SAN behind name": {"tenantmesh:18000", "10.0.0.7", tlsv3.SubjectAltNameMatcher_IP_ADDRESS, "10.0.0.7", "tenantmesh"},
	} {
		o := edgeOptions()
		o.XDSAddress = tc.address
		o.TLS = &TLSFiles{CA: "/ca.pem", ServerSAN: tc.san}
		ctx := upstreamTLSOf(t, o)
		vc := ctx.GetCommonTlsContext().GetValidationContext()
		m := vc.GetMatchTypedSubjectAltNames()
		if len(m) != 1 || m[0].GetSanType() != tc.wantType || m[0].GetMatcher().GetExact() != tc.wantSAN {
			t.Errorf("%s: SAN matchers %v, want exactly %v %q", name, m, tc.wantType, tc.wantSAN)
		}
		if ctx.GetSni() != tc.wantSNI || vc.GetTrustedCa().GetFilename() != "/ca.pem" {
			t.Errorf("%s: SNI %q CA %q, want SNI %q CA /ca.pem", name, ctx.GetSni(), vc.GetTrustedCa().GetFilename(), tc.wantSNI)
		}
		p := ctx.GetCommonTlsContext().GetTlsParams()
		if p.GetTlsMinimumProtocolVersion() != tlsv3.TlsParameters_TLSv1_2 || p.GetTlsMaximumProtocolVersion() != tlsv3.TlsParameters_TLSv1_3 {
			t.Errorf("%s: TLS params %v, want 1.2 to 1.3", name, p)
		}
		if len(ctx.GetCommonTlsContext().GetTlsCertificates()) != 0 {
			t.Errorf("%s: no client certificate given, but the context presents one", name)
		}
	}
	o := edgeOptions()
	o.TLS = &TLSFiles{CA: "/ca.crt", Cert: "/tls.crt", Key: "/tls.key"}
	certs := upstreamTLSOf(t, o).GetCommonTlsContext().GetTlsCertificates()
	if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != "/tls.crt" || certs[0].GetPrivateKey().GetFilename() != "/tls.key" {
		t.Errorf("client certificate %v, want /tls.crt with /tls.key", certs)
	}
	for _, san := range []string{"spiffe://", "spiffe:///x", "not a name", "-bad.example", "a..b"} {
		o := edgeOptions()
		o.TLS = &TLSFiles{CA: "/ca.crt", ServerSAN: san}
		if _, err := Envoy(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("server SAN %q: err %v, want ErrInvalidOptions", san, err)
		}
	}
}

func TestAdminOnLoopback(t *testing.T) {
	a := mustEnvoy(t, sidecarOptions()).GetAdmin().GetAddress().GetSocketAddress()
	if a.GetAddress() != "127.0.0.1" || a.GetPortValue() != 9902 {
		t.Errorf("admin at %s:%d, want 127.0.0.1:9902", a.GetAddress(), a.GetPortValue())
	}
	if p := mustEnvoy(t, edgeOptions()).GetAdmin().GetAddress().GetSocketAddress().GetPortValue(); p != DefaultAdminPort {
		t.Errorf("default admin port %d, want %d", p, DefaultAdminPort)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, edit := range map[string]func(*Options){
		"no node id":           func(o *Options) { o.NodeID = "" },
		"unknown role":         func(o *Options) { o.Role = "gateway" },
		"edge with tenant":     func(o *Options) { o.Tenant = "tenant-a" },
		"no port":              func(o *Options) { o.XDSAddress = "tenantmesh" },
		"port out of range":    func(o *Options) { o.XDSAddress = "tenantmesh:70000" },
		"no host":              func(o *Options) { o.XDSAddress = ":18000" },
		"admin port":           func(o *Options) { o.AdminPort = 65536 },
		"tls without ca":       func(o *Options) { o.TLS = &TLSFiles{Cert: "c", Key: "k"} },
		"tls cert without key": func(o *Options) { o.TLS = &TLSFiles{CA: "ca", Cert: "c"} },
		"sidecar without port": func(o *Options) { o.Role, o.Tenant, o.Service = translate.RoleSidecar, "a", "svc" },
		"sidecar bad tenant":   func(o *Options) { o.Role, o.Tenant, o.Service, o.AppPort = translate.RoleSidecar, "A_b", "svc", 80 },
		"sidecar without svc":  func(o *Options) { o.Role, o.Tenant, o.AppPort = translate.RoleSidecar, "a", 80 },
		"grpc role takes grpc": func(o *Options) { o.Role = translate.RoleGRPC },
		"ratelimit takes env":  func(o *Options) { o.Role = RoleRatelimit },
		"negative connections": func(o *Options) { o.MaxDownstreamConnections = -1 },
	} {
		o := edgeOptions()
		edit(&o)
		if _, err := Envoy(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err %v, want ErrInvalidOptions", name, err)
		}
	}
}

func grpcOptions() Options {
	return Options{NodeID: "grpc-client-1", Role: translate.RoleGRPC, XDSAddress: "tenantmesh:18000"}
}

func TestGRPCBootstrap(t *testing.T) {
	out, err := GRPC(grpcOptions())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "grpc.json", out)
	// grpc-go's own client is the judge: built from the file, it must dial
	// the server named there and present the node written there.
	xdsAddr, reqs := fakeADS(t)
	local := grpcOptions()
	local.XDSAddress = xdsAddr
	parsed, err := GRPC(local)
	if err != nil {
		t.Fatal(err)
	}
	conn := grpcGoClient(t, parsed)
	conn.Connect()
	select {
	case req := <-reqs:
		if n := req.GetNode(); n.GetId() != "grpc-client-1" || n.GetMetadata().GetFields()["role"].GetStringValue() != "grpc" {
			t.Errorf("grpc-go presented node %v, want id grpc-client-1 with role grpc", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("grpc-go never opened an ADS stream to the server of the bootstrap")
	}
	if err := grpcGoLoads(t, []byte(`{"xds_servers": [{"server_uri": "x:1", "channel_creds": [{"type": "no-such-creds"}]}]}`)); !strings.Contains(err.Error(), "failed to create xds-client") {
		t.Fatalf("grpc-go accepted a broken bootstrap (%v): the check above proves nothing", err)
	}
	var doc struct {
		XDSServers []struct {
			ServerURI      string   `json:"server_uri"`
			ServerFeatures []string `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"node"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.XDSServers[0].ServerURI != "tenantmesh:18000" || doc.XDSServers[0].ServerFeatures[0] != "xds_v3" ||
		doc.Node.ID != "grpc-client-1" || doc.Node.Metadata["role"] != "grpc" {
		t.Errorf("grpc bootstrap %s: want server tenantmesh:18000 (xds_v3), node grpc-client-1 with role grpc", out)
	}

	o := grpcOptions()
	o.TLS = &TLSFiles{CA: "/ca.pem", Cert: "/c.pem", Key: "/k.pem"}
	out, err = GRPC(o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"type": "tls"`) || !strings.Contains(string(out), `"ca_certificate_file": "/ca.pem"`) {
		t.Errorf("TLS grpc bootstrap lacks tls channel creds:\n%s", out)
	}
	if _, err := GRPC(edgeOptions()); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("grpc bootstrap for an edge: err %v, want ErrInvalidOptions", err)
	}
}

// grpcGoClient is a client conn resolving through grpc-go's xDS resolver
// built from bootstrap.
func grpcGoClient(t *testing.T, bootstrap []byte) *grpc.ClientConn {
	t.Helper()
	r, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///tenant-a.executive", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(r))
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

// grpcGoLoads makes one RPC through grpc-go's xDS resolver built from
// bootstrap and returns its error; a bootstrap grpc-go cannot parse fails
// with "failed to create xds-client".
func grpcGoLoads(t *testing.T, bootstrap []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(grpcGoClient(t, bootstrap)).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		t.Fatal("an RPC succeeded without any xDS server")
	}
	return err
}

// fakeADS is an ADS server on loopback that reports every stream's first
// request and answers nothing.
func fakeADS(t *testing.T, opts ...grpc.ServerOption) (string, <-chan *discoverygrpc.DiscoveryRequest) {
	t.Helper()
	addr, reqs, _ := fakeADSWithPeers(t, opts...)
	return addr, reqs
}

// fakeADSWithPeers is fakeADS that also reports the SPIFFE ID of each
// stream's client certificate ("" without one).
func fakeADSWithPeers(t *testing.T, opts ...grpc.ServerOption) (string, <-chan *discoverygrpc.DiscoveryRequest, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	ads := &requestRecorder{reqs: make(chan *discoverygrpc.DiscoveryRequest, 16), peers: make(chan string, 16)}
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(srv, ads)
	go func() {
		if err := srv.Serve(l); err != nil {
			t.Logf("fake ADS: %v", err)
		}
	}()
	t.Cleanup(srv.Stop)
	return l.Addr().String(), ads.reqs, ads.peers
}

type requestRecorder struct {
	discoverygrpc.UnimplementedAggregatedDiscoveryServiceServer
	reqs  chan *discoverygrpc.DiscoveryRequest
	peers chan string
}

func (n *requestRecorder) StreamAggregatedResources(stream discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	select {
	case n.reqs <- req:
	default:
	}
	id, _ := identity.PeerIdentity(stream.Context()) // "" without a certificate
	select {
	case n.peers <- id:
	default:
	}
	<-stream.Context().Done()
	return nil
}

// TestGRPCServerBootstrap runs grpc-go's xDS-enabled server on the
// generated bootstrap: it must identify itself as the tenant's service and
// ask for the Listener of its own address, named by our template.
func TestGRPCServerBootstrap(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	xdsAddr, reqs := fakeADS(t)
	o := Options{NodeID: "orders-1", Role: translate.RoleGRPCServer, Tenant: "tenant-a", Service: "orders",
		AppPort: port, AppAddress: "127.0.0.1", XDSAddress: xdsAddr}
	out, err := GRPC(o)
	if err != nil {
		t.Fatal(err)
	}
	fixed := o
	fixed.AppPort, fixed.XDSAddress = 50051, "tenantmesh:18000"
	g, err := GRPC(fixed)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "grpc-server.json", g)

	srv, err := xds.NewGRPCServer(grpc.Creds(insecure.NewCredentials()), xds.BootstrapContentsForTesting(out))
	if err != nil {
		t.Fatalf("grpc-go rejects the server bootstrap: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-served
	}()
	select {
	case req := <-reqs:
		n := translate.NodeFromProto(req.GetNode())
		want := translate.Node{ID: "orders-1", Role: translate.RoleGRPCServer, Tenant: "tenant-a", Service: "orders", AppPort: port, AppAddress: "127.0.0.1"}
		if n != want {
			t.Errorf("grpc-go presented node %+v, want %+v", n, want)
		}
		wantName := translate.GRPCServerListenerName(lis.Addr().String())
		if names := req.GetResourceNames(); len(names) != 1 || names[0] != wantName {
			t.Errorf("grpc-go asked for %v, want the Listener %q", names, wantName)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("grpc-go's server never asked the xDS server of the bootstrap for its Listener")
	}
}
