package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// There is no Envoy binary here: these tests take the tenantmesh-authz and
// tenantmesh-ratelimit clusters an edge receives over xDS and dial the
// real servers with a crypto/tls client built from the clusters'
// UpstreamTlsContext (envoyTLS), doing what Envoy's TLS transport socket
// does with it. That an Envoy parses the context is the publish gate's
// and the goldens' part.

// tlsPlane serves xDS and ext_authz over mutual TLS with one server
// certificate for 127.0.0.1 (the deployments share one, too), and returns
// an edge's certificate directory and its mutual-TLS xDS connection.
func tlsPlane(t *testing.T, ca *testCA) (p *plane, edgeDir string, xds *grpc.ClientConn) {
	t.Helper()
	srv := ca.issue(devca.Request{ID: identity.ControlPlane(trustDomain), IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	files := tlsconfig.Files{Cert: filepath.Join(srv, devca.CertFile), Key: filepath.Join(srv, devca.KeyFile), ClientCA: filepath.Join(srv, devca.CACertFile)}
	p = startPlane(t, controlplane.Config{XDSTLS: files, AuthzTLS: files})
	edgeDir = ca.issue(devca.Request{ID: identity.Edge(trustDomain, "edge-1"), Usage: devca.ClientAuth})
	return p, edgeDir, dialTLS(t, p.cfg.XDSListen, edgeFiles(edgeDir))
}

func edgeFiles(dir string) tlsconfig.ClientFiles {
	return tlsconfig.ClientFiles{CA: filepath.Join(dir, devca.CACertFile), Cert: filepath.Join(dir, devca.CertFile), Key: filepath.Join(dir, devca.KeyFile)}
}

func dialTLS(t *testing.T, addr string, f tlsconfig.ClientFiles) *grpc.ClientConn {
	t.Helper()
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return dial(t, addr, cfg)
}

func dial(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close %s: %v", addr, err)
		}
	})
	return conn
}

// serviceTLSYAML is a MeshConfig field spec.<field>.tls naming the edge's
// files in dir and the SAN the server must carry.
func serviceTLSYAML(field, address, dir, san string) string {
	return fmt.Sprintf("  %s:\n    address: %s\n    tls:\n      caFile: %s\n      san: %s\n      certFile: %s\n      keyFile: %s\n",
		field, address, filepath.Join(dir, devca.CACertFile), san, filepath.Join(dir, devca.CertFile), filepath.Join(dir, devca.KeyFile))
}

// edgeCluster fetches, as an edge over ADS, cluster name once it has a
// transport socket (the MeshConfig change has reached the edge).
func edgeCluster(t *testing.T, conn *grpc.ClientConn, name string) *clusterv3.Cluster {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		snap, err := adsclient.Fetch(ctx, conn, node("edge-1", "edge"), true, []string{resourcev3.ClusterType}, 200*time.Millisecond)
		cancel()
		if err == nil {
			if c, ok := snap[resourcev3.ClusterType][name].(*clusterv3.Cluster); ok && c.GetTransportSocket() != nil {
				return c
			}
			err = errors.New("no TLS transport socket yet")
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("cluster %s: %v", name, last)
	return nil
}

var tlsVersions = map[tlsv3.TlsParameters_TlsProtocol]uint16{
	tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
	tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
}

// envoyTLS is the client side c's UpstreamTlsContext describes: the chain
// checked against trusted_ca, then the one SAN matcher (URI, DNS with
// DNS rules, or IP; StringSanMatcher::match in
// source/common/tls/cert_validator/san_matcher.cc) instead of Go's own
// host name check, SNI, ALPN, the protocol versions and the client
// certificate — all read from the files the cluster names.
func envoyTLS(t *testing.T, c *clusterv3.Cluster) *tls.Config {
	t.Helper()
	var ctx tlsv3.UpstreamTlsContext
	if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatalf("cluster %s: %v", c.GetName(), err)
	}
	common := ctx.GetCommonTlsContext()
	v := common.GetValidationContext()
	pem, err := os.ReadFile(v.GetTrustedCa().GetFilename())
	if err != nil {
		t.Fatalf("cluster %s trusted_ca: %v", c.GetName(), err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("cluster %s: trusted_ca holds no certificate", c.GetName())
	}
	sans := v.GetMatchTypedSubjectAltNames()
	if len(sans) != 1 {
		t.Fatalf("cluster %s: SAN matchers %v, want one", c.GetName(), sans)
	}
	want := sans[0]
	cfg := &tls.Config{
		ServerName: ctx.GetSni(),
		NextProtos: common.GetAlpnProtocols(),
		MinVersion: tlsVersions[common.GetTlsParams().GetTlsMinimumProtocolVersion()],
		MaxVersion: tlsVersions[common.GetTlsParams().GetTlsMaximumProtocolVersion()],
		// Replaced by VerifyPeerCertificate: Envoy checks the SAN matcher,
		// not the name dialled.
		InsecureSkipVerify: true, //nolint:gosec // verified below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				if certs[i], err = x509.ParseCertificate(r); err != nil {
					return err
				}
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
				return err
			}
			return matchSAN(certs[0], want)
		},
	}
	if tc := common.GetTlsCertificates(); len(tc) == 1 {
		pair, err := tls.LoadX509KeyPair(tc[0].GetCertificateChain().GetFilename(), tc[0].GetPrivateKey().GetFilename())
		if err != nil {
			t.Fatalf("cluster %s client certificate: %v", c.GetName(), err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func matchSAN(leaf *x509.Certificate, m *tlsv3.SubjectAltNameMatcher) error {
	exact := m.GetMatcher().GetExact()
	switch m.GetSanType() {
	case tlsv3.SubjectAltNameMatcher_URI:
		for _, u := range leaf.URIs {
			if u.String() == exact {
				return nil
			}
		}
	case tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		if leaf.VerifyHostname(exact) == nil {
			return nil
		}
	}
	return fmt.Errorf("server certificate (URIs %v, DNS %v, IPs %v) does not carry %v SAN %q", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, m.GetSanType(), exact)
}

// wantRefused asserts that call fails as a refused connection does.
func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: call succeeded", what)
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("%s: %v, want Unavailable (the handshake refused)", what, err)
	}
}

// http2Answers reports whether a raw TLS client (cfg as is) gets a server's
// HTTP/2 SETTINGS back after sending the client preface: grpc-go closes a
// connection that negotiated no ALPN h2 before speaking HTTP/2
// (credentials/tls.go, ServerHandshake: "missing selected ALPN property").
func http2Answers(t *testing.T, addr string, cfg *tls.Config) bool {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return false
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	}()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The client preface, then an empty SETTINGS frame (RFC 9113 §3.4).
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		return false
	}
	frame := make([]byte, 9)
	if _, err := io.ReadFull(c, frame); err != nil {
		return false
	}
	return frame[3] == 0x4
}

// TestEdgeCallsAuthzOverMutualTLS: with MeshConfig spec.authz.tls, the
// edge's tenantmesh-authz cluster carries what reaching `serve
// --authz-tls-*` with a client CA takes — the CA, the control plane's
// SPIFFE ID, the edge's certificate, ALPN h2 — and a client built from it
// gets CheckResponses; without a client certificate, with one of another
// CA, or without ALPN h2, the server refuses.
func TestEdgeCallsAuthzOverMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	p, edgeDir, xds := tlsPlane(t, ca)
	p.apply(t, "apiVersion: tenantmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n"+
		serviceTLSYAML("authz", p.cfg.AuthzListen, edgeDir, identity.ControlPlane(trustDomain).String()),
		tenantYAML("tenant-a", 9001, ""))

	cfg := envoyTLS(t, edgeCluster(t, xds, translate.AuthzClusterName))
	if len(cfg.Certificates) != 1 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "h2" {
		t.Fatalf("tenantmesh-authz: client certificates %d, ALPN %v; want the edge's certificate and h2", len(cfg.Certificates), cfg.NextProtos)
	}
	resp := check(t, authv3.NewAuthorizationClient(dial(t, p.cfg.AuthzListen, cfg)), "tenant-a", nil)
	if c := code.Code(resp.GetStatus().GetCode()); c != code.Code_UNAUTHENTICATED {
		t.Errorf("Check without credentials over mutual TLS: %v, want a denial UNAUTHENTICATED", c)
	}

	checkErr := func(cfg *tls.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := authv3.NewAuthorizationClient(dial(t, p.cfg.AuthzListen, cfg)).Check(ctx, &authv3.CheckRequest{})
		return err
	}
	noCert := cfg.Clone()
	noCert.Certificates = nil
	wantRefused(t, "no client certificate", checkErr(noCert))

	other := newTestCA(t)
	stranger := other.issue(devca.Request{ID: identity.Edge(trustDomain, "edge-1"), Usage: devca.ClientAuth})
	foreign := cfg.Clone()
	pair, err := tls.LoadX509KeyPair(filepath.Join(stranger, devca.CertFile), filepath.Join(stranger, devca.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	foreign.Certificates = []tls.Certificate{pair}
	wantRefused(t, "client certificate of another CA", checkErr(foreign))

	if !http2Answers(t, p.cfg.AuthzListen, cfg) {
		t.Fatal("raw HTTP/2 over the cluster's TLS settings got no SETTINGS: the probe itself is broken")
	}
	noALPN := cfg.Clone()
	noALPN.NextProtos = nil
	if http2Answers(t, p.cfg.AuthzListen, noALPN) {
		t.Error("ext_authz spoke HTTP/2 over TLS without ALPN h2; the cluster's alpn_protocols would not matter")
	}
}

// TestEdgeCallsRatelimitOverMutualTLS: envoyproxy/ratelimit serving its
// gRPC port over mutual TLS (GRPC_SERVER_USE_TLS, GRPC_SERVER_TLS_CERT/KEY,
// GRPC_CLIENT_TLS_CACERT) with the one certificate `certs ratelimit --ip`
// issues, which is also its xDS client certificate (as in the compose
// demo); the edge's tenantmesh-ratelimit cluster from spec.rateLimit.tls
// reaches it, matching its SPIFFE ID, and a client without a certificate
// is refused.
func TestEdgeCallsRatelimitOverMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	p, edgeDir, xds := tlsPlane(t, ca)
	rlID := identity.Ratelimit(trustDomain, "ratelimit-test")
	rlDir := ca.issue(devca.Request{ID: rlID, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAndClientAuth})
	files := &bootstrap.TLSFiles{CA: filepath.Join(rlDir, devca.CACertFile), Cert: filepath.Join(rlDir, devca.CertFile), Key: filepath.Join(rlDir, devca.KeyFile)}
	env, err := bootstrap.Ratelimit(bootstrap.Options{NodeID: "ratelimit-test", Role: bootstrap.RoleRatelimit, XDSAddress: p.cfg.XDSListen, TLS: files})
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{
		"GRPC_SERVER_USE_TLS=true",
		"GRPC_SERVER_TLS_CERT=" + files.Cert, "GRPC_SERVER_TLS_KEY=" + files.Key,
		"GRPC_CLIENT_TLS_CACERT=" + files.CA,
	}
	for _, e := range env {
		extra = append(extra, e.Name+"="+e.Value)
	}
	p.apply(t, tenantYAML("tenant-a", 9001, limitedTenant))
	rls := ratelimittest.StartRatelimit(t, p.cfg.XDSListen, ratelimittest.StartRedis(t).Addr, extra...)
	p.apply(t, "apiVersion: tenantmesh.io/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n"+
		serviceTLSYAML("rateLimit", rls.Addr, edgeDir, rlID.String()))

	cfg := envoyTLS(t, edgeCluster(t, xds, translate.RateLimitClusterName))
	l := &limiter{t: t, rl: rlsv3.NewRateLimitServiceClient(dial(t, rls.Addr, cfg))}
	da := descriptor("tenant-a", "", "minute")
	used := l.waitLimit(da, 5)
	l.expect(da, 5-used, rlsv3.RateLimitResponse_OK)
	l.expect(da, 1, rlsv3.RateLimitResponse_OVER_LIMIT)

	noCert := cfg.Clone()
	noCert.Certificates = nil
	_, err = (&limiter{t: t, rl: rlsv3.NewRateLimitServiceClient(dial(t, rls.Addr, noCert))}).call(da)
	wantRefused(t, "ratelimit without a client certificate", err)
}
