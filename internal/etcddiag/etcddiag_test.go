package etcddiag

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/internal/testcerts"
)

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestNothingListening(t *testing.T) {
	addr := closedAddr(t)
	if err := Diagnose(t.Context(), addr, Files{}); !errors.Is(err, ErrNotListening) {
		t.Errorf("Diagnose: %v, want ErrNotListening", err)
	}
	// Explain leaves that case to the caller's "unreachable".
	if err := Explain(t.Context(), []string{addr}, Files{CA: "unused"}); err != nil {
		t.Errorf("Explain: %v, want nil", err)
	}
}

// TLS configured, plaintext server: said so, naming the flags to drop.
func TestTLSToAPlaintextServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "ca").WriteCA(t, dir, "ca.crt")
	err := Diagnose(t.Context(), srv.Listener.Addr().String(), Files{CA: ca})
	if err == nil || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Fatalf("Diagnose: %v", err)
	}
	// And no TLS to a plaintext server is no problem.
	if err := Diagnose(t.Context(), srv.Listener.Addr().String(), Files{}); err != nil {
		t.Fatalf("plaintext to plaintext: %v", err)
	}
}

// A certificate for another name than the endpoint's host.
func TestCertificateForAnotherName(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "ca")
	certFile, keyFile := ca.WriteLeaf(t, dir, "srv", testcerts.Leaf{CommonName: "etcd", DNSNames: []string{"etcd.example"}, Server: true})
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	err = Diagnose(t.Context(), "https://"+srv.Listener.Addr().String(), Files{CA: ca.WriteCA(t, dir, "ca.crt")})
	if err == nil || !strings.Contains(err.Error(), "not valid for") {
		t.Fatalf("Diagnose: %v", err)
	}
}
