package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := runArgs("", args...)
	if r.code != 0 {
		t.Fatalf("tenantmesh %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "DEV ONLY") {
		t.Errorf("tenantmesh %v: no DEV ONLY warning on stderr", args)
	}
	return r.stdout
}

func loadLeaf(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, devca.CertFile), filepath.Join(dir, devca.KeyFile))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return pair.Leaf
}

func TestCertsIssueTheScheme(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	mustRun(t, "certs", "ca", "--out", ca, "--trust-domain", "example.org")
	if r := runArgs("", "certs", "ca", "--out", ca); r.code == 0 || !strings.Contains(r.stderr, "already holds a CA key") {
		t.Errorf("second certs ca into the same directory: exit %d %s", r.code, r.stderr)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(ca, devca.CACertFile)))) {
		t.Fatal("ca.crt holds no certificate")
	}

	out := mustRun(t, "certs", "server", "--ca", ca, "--out", filepath.Join(dir, "server"), "--dns", "tenantmesh,localhost", "--ip", "127.0.0.1,10.0.0.7")
	if !strings.Contains(out, "spiffe://example.org/controlplane") {
		t.Errorf("certs server printed %q", out)
	}
	server := loadLeaf(t, filepath.Join(dir, "server"))
	for _, name := range []string{"tenantmesh", "localhost", "127.0.0.1", "10.0.0.7"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if len(server.URIs) != 1 || server.URIs[0].String() != "spiffe://example.org/controlplane" {
		t.Errorf("server URIs %v", server.URIs)
	}

	for args, want := range map[string]string{
		"edge edge-1": "spiffe://example.org/edge/edge-1",
		"sidecar --tenant tenant-a --service executive":  "spiffe://example.org/tenant/tenant-a/service/executive",
		"grpc-server --tenant tenant-b --service orders": "spiffe://example.org/tenant/tenant-b/service/orders",
		"grpc grpc-client-1":                             "spiffe://example.org/grpc/grpc-client-1",
		"ratelimit ratelimit":                            "spiffe://example.org/ratelimit/ratelimit",
	} {
		leafDir := filepath.Join(dir, strings.ReplaceAll(args, " ", "_"))
		mustRun(t, append(append([]string{"certs"}, strings.Fields(args)...), "--ca", ca, "--out", leafDir, "--validity", "24h")...)
		l := loadLeaf(t, leafDir)
		if len(l.URIs) != 1 || l.URIs[0].String() != want || len(l.DNSNames) != 0 {
			t.Errorf("certs %s: URIs %v DNS %v, want exactly %s", args, l.URIs, l.DNSNames, want)
		}
		if _, err := l.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("certs %s: not a client certificate of the CA: %v", args, err)
		}
		if _, err := l.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
			t.Errorf("certs %s: also valid as a server certificate", args)
		}
		if st, err := os.Stat(filepath.Join(leafDir, devca.KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("certs %s: key mode %v %v, want 0600", args, st.Mode(), err)
		}
	}

	// What serve loads: the server directory as --xds-tls-*.
	if _, err := tlsconfig.NewServer(tlsconfig.Files{
		Cert: filepath.Join(dir, "server", devca.CertFile), Key: filepath.Join(dir, "server", devca.KeyFile),
		ClientCA: filepath.Join(dir, "server", devca.CACertFile),
	}, nil); err != nil {
		t.Errorf("serve would not load the server directory: %v", err)
	}
}

func TestCertsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	mustRun(t, "certs", "ca", "--out", ca)
	for _, args := range [][]string{
		{"certs", "ca"},
		{"certs", "ca", "--out", filepath.Join(dir, "x"), "--trust-domain", "Not A Domain"},
		{"certs", "edge", "--ca", ca, "--out", filepath.Join(dir, "e")},               // no name
		{"certs", "edge", "e", "--out", filepath.Join(dir, "e")},                      // no CA
		{"certs", "edge", "a/b", "--ca", ca, "--out", filepath.Join(dir, "e")},        // not a path segment
		{"certs", "sidecar", "--tenant", "tenant-a", "--ca", ca, "--out", dir + "/s"}, // no service
		{"certs", "sidecar", "--tenant", "Tenant_A", "--service", "s", "--ca", ca, "--out", dir + "/s"},
		{"certs", "server", "--ca", ca, "--out", dir + "/srv", "--dns", "", "--ip", ""},
	} {
		if r := runArgs("", args...); r.code != exitUsage {
			t.Errorf("tenantmesh %v: exit %d (want %d)\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
	if r := runArgs("", "certs", "edge", "e", "--ca", filepath.Join(dir, "nope"), "--out", dir+"/e"); r.code != exitError {
		t.Errorf("certs edge with a missing CA: exit %d %s", r.code, r.stderr)
	}
}

// TestCertsRatelimitServes: with --dns/--ip, ratelimit's certificate is a
// server certificate for those names as well as its xDS client one, so
// one Secret serves GRPC_SERVER_TLS_* and CONFIG_GRPC_XDS_CLIENT_TLS_*.
func TestCertsRatelimitServes(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	mustRun(t, "certs", "ca", "--out", ca)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(ca, devca.CACertFile)))) {
		t.Fatal("ca.crt holds no certificate")
	}
	out := filepath.Join(dir, "rl")
	mustRun(t, "certs", "ratelimit", "ratelimit", "--ca", ca, "--out", out, "--dns", "ratelimit", "--ip", "10.0.0.9")
	l := loadLeaf(t, out)
	if len(l.URIs) != 1 || l.URIs[0].String() != "spiffe://tenantmesh.local/ratelimit/ratelimit" {
		t.Errorf("URIs %v", l.URIs)
	}
	for _, name := range []string{"ratelimit", "10.0.0.9"} {
		if _, err := l.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("not a server certificate for %s: %v", name, err)
		}
	}
	if _, err := l.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("no longer a client certificate: %v", err)
	}
}
