package devca

import (
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/identity"
)

func TestIssuedCertificatesVerify(t *testing.T) {
	ca, err := NewCA("example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.URIs[0].String() != "spiffe://example.org" || ca.Cert.NotAfter.Sub(time.Now()) < DefaultCAValidity-time.Hour {
		t.Fatalf("CA %v: want a CA with URI spiffe://example.org valid for about %v", ca.Cert.Subject, DefaultCAValidity)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	server, err := ca.Issue(Request{ID: identity.ControlPlane("example.org"), DNSNames: []string{"tenantmesh"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "tenantmesh", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("server certificate does not verify for tenantmesh: %v", err)
	}
	if err := server.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("server certificate lacks its IP SAN: %v", err)
	}
	if _, err := server.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("server certificate also verifies as a client certificate: its EKU should be server auth only")
	}

	edge, err := ca.Issue(Request{ID: identity.Edge("example.org", "edge-1"), Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := edge.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify as client: %v", err)
	}
	if _, err := edge.Cert.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Error("client certificate verifies as a server certificate: its EKU should be client auth only")
	}
	if len(edge.Cert.URIs) != 1 || edge.Cert.URIs[0].String() != "spiffe://example.org/edge/edge-1" || len(edge.Cert.DNSNames) != 0 {
		t.Errorf("edge certificate SANs: URIs %v DNS %v, want exactly spiffe://example.org/edge/edge-1", edge.Cert.URIs, edge.Cert.DNSNames)
	}
	if d := edge.Cert.NotAfter.Sub(time.Now()); d > DefaultLeafValidity || d < DefaultLeafValidity-time.Hour {
		t.Errorf("leaf valid for %v, want about %v", d, DefaultLeafValidity)
	}
	if !strings.Contains(string(edge.KeyPEM), "PRIVATE KEY") {
		t.Errorf("key PEM %q", edge.KeyPEM)
	}
}

func TestIssueRefuses(t *testing.T) {
	ca, err := NewCA("example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]Request{
		"other trust domain": {ID: identity.Edge("other.org", "e"), Usage: ClientAuth},
		"invalid id":         {ID: identity.Service("example.org", "Tenant_A", "s"), Usage: ClientAuth},
		"no usage":           {ID: identity.Edge("example.org", "e")},
	} {
		if _, err := ca.Issue(r); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
	if _, err := NewCA("Not A Domain", 0); !errors.Is(err, identity.ErrInvalidID) {
		t.Errorf("CA for an invalid trust domain: %v", err)
	}
	// A leaf never outlives its CA.
	l, err := ca.Issue(Request{ID: identity.Edge("example.org", "e"), Usage: ClientAuth, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if l.Cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf expires %v after its CA %v", l.Cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestSaveAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err == nil {
		t.Error("Save overwrote an existing CA key")
	}
	st, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, %v; want 0600", st.Mode(), err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.TrustDomain != "example.org" || !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Errorf("loaded CA differs: trust domain %q", back.TrustDomain)
	}
	leaf, err := back.Issue(Request{ID: identity.GRPC("example.org", "c"), Usage: ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "grpc-c")
	if err := leaf.Save(out, back); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{CertFile: 0o644, KeyFile: 0o600, CACertFile: 0o644} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", name, st.Mode(), err, mode)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), leaf.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is not the key of") {
		t.Errorf("Load with a key of another certificate: %v", err)
	}
}

// TestServerAndClientAuth: a certificate for a service that is also a
// client (envoyproxy/ratelimit) verifies both ways, with its SANs.
func TestServerAndClientAuth(t *testing.T) {
	ca, err := NewCA("example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	rl, err := ca.Issue(Request{ID: identity.Ratelimit("example.org", "rl"), DNSNames: []string{"ratelimit"}, Usage: ServerAndClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := rl.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "ratelimit", KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("usage %v: %v", u, err)
		}
	}
	if len(rl.Cert.URIs) != 1 || rl.Cert.URIs[0].String() != "spiffe://example.org/ratelimit/rl" {
		t.Errorf("URIs %v", rl.Cert.URIs)
	}
}
