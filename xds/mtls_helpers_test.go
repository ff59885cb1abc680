package xds

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/grpctest"
	"github.com/tenantmesh/tenantmesh/internal/identity"
)

// serveTLS serves s over TLS with a control-plane certificate of ca for
// 127.0.0.1 (trust domain td), checking client certificates of ca with
// clientAuth. It returns the address.
func serveTLS(t *testing.T, s *Server, ca *devca.CA, td string, clientAuth tls.ClientAuthType) string {
	t.Helper()
	l, err := ca.Issue(devca.Request{ID: identity.ControlPlane(td), IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return grpctest.Serve(t, s.Register, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: clientAuth, MinVersion: tls.VersionTLS12,
	})))
}

// dialTLS connects to addr trusting ca, presenting a certificate for id
// issued by issuer (nil issuer: no certificate).
func dialTLS(t *testing.T, addr string, ca, issuer *devca.CA, id identity.ID) *grpc.ClientConn {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
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
	return grpctest.Dial(t, addr, credentials.NewTLS(cfg))
}
