package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

const trustDomain = "test.local"

// testPKI is a dev CA with the control plane's server certificate (and
// the CA's ca.crt, which the server trusts for clients) in serverDir.
type testPKI struct {
	ca        *devca.CA
	serverDir string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := devca.NewCA(trustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, serverDir: t.TempDir()}
	p.rotateServer(t)
	return p
}

// rotateServer issues a new server certificate into serverDir (by rename,
// as cert-manager and `tenantmesh certs` write).
func (p *testPKI) rotateServer(t *testing.T) *x509.Certificate {
	t.Helper()
	l, err := p.ca.IssueTo(p.serverDir, devca.Request{ID: identity.ControlPlane(trustDomain),
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	return l.Cert
}

func (p *testPKI) files() tlsconfig.Files {
	return tlsconfig.Files{
		Cert:     filepath.Join(p.serverDir, devca.CertFile),
		Key:      filepath.Join(p.serverDir, devca.KeyFile),
		ClientCA: filepath.Join(p.serverDir, devca.CACertFile),
	}
}

// clientCreds trusts ca for the server and presents a certificate of
// issuer for id (no certificate when issuer is nil).
func clientCreds(t *testing.T, ca, issuer *devca.CA, id identity.ID) credentials.TransportCredentials {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: roots}
	if issuer != nil {
		l, err := issuer.Issue(devca.Request{ID: id, Usage: devca.ClientAuth})
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg)
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
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

func edgeNode(id string) *corev3.Node {
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("edge")}}}
}

// openADS opens a delta stream as an edge and waits for the first
// response to a Cluster subscription.
func openADS(ctx context.Context, conn *grpc.ClientConn) (*adsclient.Client, error) {
	c, err := adsclient.Open(ctx, conn, edgeNode("edge-1"), true)
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		return nil, err
	}
	u, err := c.Recv()
	if err != nil {
		return nil, err
	}
	return c, c.Ack(u)
}

// serverCert is the certificate a fresh handshake with addr sees.
func serverCert(t *testing.T, addr string, p *testPKI, client tls.Certificate) *x509.Certificate {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}, Certificates: []tls.Certificate{client},
		ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	}()
	return c.ConnectionState().PeerCertificates[0]
}

func TestServeRefusesPlaintextOffLoopback(t *testing.T) {
	p := newTestPKI(t)
	for name, tc := range map[string]struct {
		edit    func(*Config)
		wantErr []string // empty: valid
	}{
		"defaults (make run)": {func(*Config) {}, nil},
		"xds on 0.0.0.0": {func(c *Config) { c.XDSListen = "0.0.0.0:18000" },
			[]string{"--xds-listen 0.0.0.0:18000", "--xds-tls-cert", "--xds-tls-key", "--xds-tls-client-ca"}},
		"xds on every interface": {func(c *Config) { c.XDSListen = ":18000" }, []string{"--xds-tls-cert"}},
		"xds by name":            {func(c *Config) { c.XDSListen = "tenantmesh:18000" }, []string{"--xds-tls-cert"}},
		"authz on 0.0.0.0": {func(c *Config) { c.AuthzListen = "0.0.0.0:9191" },
			[]string{"--authz-listen 0.0.0.0:9191", "--authz-tls-cert", "--authz-insecure-plaintext"}},
		"authz plaintext accepted explicitly": {func(c *Config) {
			c.AuthzListen, c.AuthzInsecurePlaintext = "0.0.0.0:9191", true
		}, nil},
		"xds over mTLS on 0.0.0.0": {func(c *Config) { c.XDSListen, c.XDSTLS = "0.0.0.0:18000", p.files() }, nil},
		"xds disabled":             {func(c *Config) { c.XDSListen, c.DisableXDS = "0.0.0.0:18000", true }, nil},
		"client CA without cert": {func(c *Config) { c.XDSTLS = tlsconfig.Files{ClientCA: p.files().ClientCA} },
			[]string{"--xds-tls-cert and --xds-tls-key go together"}},
		"authz cert without key": {func(c *Config) { c.AuthzTLS = tlsconfig.Files{Cert: p.files().Cert} },
			[]string{"--authz-tls-cert and --authz-tls-key"}},
	} {
		cfg := Config{}
		tc.edit(&cfg)
		err := cfg.withDefaults().validate()
		if len(tc.wantErr) == 0 {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", name, err, w)
			}
		}
	}
	// Run refuses before it starts anything.
	cfg := testConfig(t)
	cfg.XDSListen = "0.0.0.0:0"
	if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--xds-tls-cert") {
		t.Fatalf("Run with plaintext xDS on 0.0.0.0: %v", err)
	}
}

func TestServeRefusesBrokenCertificates(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t)
	f := p.files()
	f.Key = filepath.Join(t.TempDir(), "missing.key")
	cfg.XDSTLS = f
	if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "xds TLS") || !strings.Contains(err.Error(), "missing.key") {
		t.Fatalf("Run with a missing key: %v", err)
	}
}

// TestXDSMutualTLS runs serve with mTLS on xDS and ext_authz and talks to
// it over real gRPC with certificates of the dev CA.
func TestXDSMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t)
	cfg.Preload = "testdata/preload-a"
	cfg.XDSTLS, cfg.AuthzTLS = p.files(), p.files()
	cfg.XDSTrustDomain = trustDomain
	cfg.TLSReloadInterval = 20 * time.Millisecond
	startRun(t, cfg)
	eventually(t, "http://"+cfg.AdminListen+"/readyz", "ready", func(r httpResult) bool { return r.code == 200 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	edgeID := identity.Edge(trustDomain, "edge-1")
	stranger, err := devca.NewCA(trustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":                 insecure.NewCredentials(),
		"TLS without a certificate": clientCreds(t, p.ca, nil, edgeID),
		"certificate of another CA": clientCreds(t, p.ca, stranger, edgeID),
	} {
		for server, addr := range map[string]string{"xds": cfg.XDSListen, "authz": cfg.AuthzListen} {
			conn := dial(t, addr, creds)
			var err error
			if server == "xds" {
				_, err = openADS(ctx, conn)
			} else {
				_, err = authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{})
			}
			if status.Code(err) != codes.Unavailable {
				t.Errorf("%s client of %s: %v, want Unavailable (refused in the handshake)", name, server, err)
			}
		}
	}

	good := clientCreds(t, p.ca, p.ca, edgeID)
	stream, err := openADS(ctx, dial(t, cfg.XDSListen, good))
	if err != nil {
		t.Fatalf("client with a certificate of the CA: %v", err)
	}
	if _, err := authv3.NewAuthorizationClient(dial(t, cfg.AuthzListen, good)).Check(ctx, &authv3.CheckRequest{}); err != nil {
		t.Fatalf("ext_authz client with a certificate of the CA: %v", err)
	}

	// Rotation on disk: new handshakes get the new certificate, the open
	// stream goes on.
	l, err := p.ca.Issue(devca.Request{ID: edgeID, Usage: devca.ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	old := serverCert(t, cfg.XDSListen, p, pair)
	fresh := p.rotateServer(t)
	if fresh.Equal(old) {
		t.Fatal("rotation issued the same certificate")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !serverCert(t, cfg.XDSListen, p, pair).Equal(fresh) {
		if time.Now().After(deadline) {
			t.Fatal("new handshakes still get the old certificate 10s after the rotation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stream.Subscribe(resourcev3.ListenerType); err != nil {
		t.Fatalf("stream opened before the rotation: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("stream opened before the rotation no longer answers: %v", err)
	}

	// A new client CA: its clients get in, the old CA's do not, and the
	// stream authenticated by the old CA stays.
	next, err := devca.NewCA(trustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Rewritten in place, not renamed: polling sees both.
	if err := writeFile(cfg.XDSTLS.ClientCA, string(next.CertPEM())); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, errNew := openADS(ctx, dial(t, cfg.XDSListen, clientCreds(t, p.ca, next, edgeID)))
		_, errOld := openADS(ctx, dial(t, cfg.XDSListen, good))
		if errNew == nil && status.Code(errOld) == codes.Unavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the client CA changed: new CA's client %v, old CA's client %v", errNew, errOld)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stream.Subscribe(resourcev3.EndpointType); err != nil {
		t.Fatalf("stream opened under the old client CA: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("stream opened under the old client CA no longer answers: %v", err)
	}
}
