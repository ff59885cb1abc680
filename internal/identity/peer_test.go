package identity_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
)

// seen is what the server's interceptor read from a call's context.
type seen struct {
	uri string
	ok  bool
	id  identity.ID
	err error
}

// startServer serves health over creds and reports each call's identity.
func startServer(t *testing.T, creds credentials.TransportCredentials) (string, <-chan seen) {
	t.Helper()
	calls := make(chan seen, 4)
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			var s seen
			s.uri, s.ok = identity.PeerIdentity(ctx)
			s.id, s.err = identity.Peer(ctx)
			calls <- s
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := srv.Serve(ln); err != nil {
			t.Logf("serve: %v", err)
		}
	}()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), calls
}

func call(t *testing.T, addr string, creds credentials.TransportCredentials, calls <-chan seen) seen {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := conn.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("call: %v", err)
	}
	return <-calls
}

func TestPeerIdentityOverRealTLS(t *testing.T) {
	const td = "example.org"
	ca, err := devca.NewCA(td, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair := func(r devca.Request) tls.Certificate {
		l, err := ca.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	server := pair(devca.Request{ID: identity.ControlPlane(td), IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	client := func(cert *tls.Certificate) credentials.TransportCredentials {
		cfg := &tls.Config{RootCAs: pool}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return credentials.NewTLS(cfg)
	}

	// Client certificates optional, so a call without one reaches the
	// handler and shows what PeerIdentity says then.
	addr, calls := startServer(t, credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}))

	sidecar := pair(devca.Request{ID: identity.Service(td, "tenant-a", "executive"), Usage: devca.ClientAuth})
	got := call(t, addr, client(&sidecar), calls)
	if !got.ok || got.uri != "spiffe://example.org/tenant/tenant-a/service/executive" {
		t.Errorf("sidecar: PeerIdentity = %q, %v", got.uri, got.ok)
	}
	if got.err != nil || got.id != identity.Service(td, "tenant-a", "executive") {
		t.Errorf("sidecar: Peer = %+v, %v", got.id, got.err)
	}

	got = call(t, addr, client(nil), calls)
	if got.ok || !errors.Is(got.err, identity.ErrNoIdentity) {
		t.Errorf("TLS without a client certificate: PeerIdentity %q %v, Peer err %v; want no identity", got.uri, got.ok, got.err)
	}

	plainAddr, plainCalls := startServer(t, insecure.NewCredentials())
	got = call(t, plainAddr, insecure.NewCredentials(), plainCalls)
	if got.ok || !errors.Is(got.err, identity.ErrNoIdentity) {
		t.Errorf("plaintext: PeerIdentity %q %v; want no identity", got.uri, got.ok)
	}
}

// TestPeerIdentityNeedsOneVerifiedSPIFFEURI: an unverified certificate
// (presented, not chained to the client CA) and a certificate with two
// spiffe URIs carry no identity.
func TestPeerIdentityNeedsOneVerifiedSPIFFEURI(t *testing.T) {
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ctxWith := func(state tls.ConnectionState) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: state}})
	}
	one := &x509.Certificate{URIs: []*url.URL{parse("https://example.org/x"), parse("spiffe://td/edge/e")}}
	two := &x509.Certificate{URIs: []*url.URL{parse("spiffe://td/edge/e"), parse("spiffe://td/edge/f")}}
	if uri, ok := identity.PeerIdentity(ctxWith(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{one}}})); !ok || uri != "spiffe://td/edge/e" {
		t.Errorf("one spiffe URI among others: %q %v", uri, ok)
	}
	if uri, ok := identity.PeerIdentity(ctxWith(tls.ConnectionState{PeerCertificates: []*x509.Certificate{one}})); ok {
		t.Errorf("unverified certificate gave identity %q", uri)
	}
	if uri, ok := identity.PeerIdentity(ctxWith(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{two}}})); ok {
		t.Errorf("two spiffe URIs gave identity %q", uri)
	}
	if _, ok := identity.PeerIdentity(context.Background()); ok {
		t.Error("a context without a peer has an identity")
	}
}
