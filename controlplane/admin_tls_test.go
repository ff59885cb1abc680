package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/testcerts"
)

func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		// Every request a new handshake: the tests watch which
		// certificate a new connection gets.
		DisableKeepAlives: true,
	}}
}

func getWith(c *http.Client, url string) (httpResult, error) {
	resp, err := c.Get(url)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(b)}, err
}

// servedSerial is the serial number of the certificate a new TLS
// handshake with addr gets.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func leafSerial(t *testing.T, certPEM []byte) *big.Int {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block in the certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceFile writes data to path the way Kubernetes and cert tools
// rotate files: a new file renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The public listener serves TLS with the configured certificate: the
// JWKS to a client trusting the CA, nothing to one that does not, no
// plain HTTP, and still 404 for the private paths. The private listener
// stays plain HTTP on loopback.
func TestPublicAdminTLSServesJWKS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "test admin CA")
	cfg := testConfig(t)
	cfg.AdminTLSCert, cfg.AdminTLSKey = ca.WriteLeaf(t, dir, "admin", testcerts.Loopback("tenantmesh-admin"))
	startRun(t, cfg)
	client := tlsClient(ca.Pool())
	public := "https://" + cfg.AdminListen
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := getWith(client, public+"/readyz")
		if err == nil && r.code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("https /readyz: %v %d %q", err, r.code, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r, err := getWith(client, public+"/.well-known/jwks.json"); err != nil || r.code != 200 || !strings.Contains(r.body, `"keys"`) {
		t.Fatalf("https JWKS: %v %d %q", err, r.code, r.body)
	}
	for _, path := range []string{"/debug/catalog", "/metrics", "/debug/pprof/"} {
		if r, err := getWith(client, public+path); err != nil || r.code != 404 {
			t.Errorf("https %s: %v %d, want 404", path, err, r.code)
		}
	}
	if _, err := getWith(tlsClient(x509.NewCertPool()), public+"/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("client without the CA: %v, want a certificate error", err)
	}
	if r, err := get("http://" + cfg.AdminListen + "/healthz"); err == nil && r.code == 200 {
		t.Errorf("plain HTTP on the TLS listener answered 200 %q", r.body)
	}
	if r, err := get("http://" + cfg.AdminPrivateListen + "/metrics"); err != nil || r.code != 200 {
		t.Errorf("private /metrics over plain HTTP: %v %d", err, r.code)
	}
}

// A certificate replaced on disk is what the next handshake gets, without
// a restart: renamed over (Kubernetes Secret, cert tools) and rewritten in
// place.
func TestPublicAdminTLSRotation(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "test admin CA")
	cfg := testConfig(t)
	cfg.AdminTLSCert, cfg.AdminTLSKey = ca.WriteLeaf(t, dir, "admin", testcerts.Loopback("tenantmesh-admin"))
	first := leafSerial(t, readBytes(t, cfg.AdminTLSCert))
	startRun(t, cfg)
	eventually(t, "http://"+cfg.AdminPrivateListen+"/metrics", "admin up", func(r httpResult) bool { return r.code == 200 })
	if got := servedSerial(t, cfg.AdminListen, ca.Pool()); got.Cmp(first) != 0 {
		t.Fatalf("served serial %v, want the configured %v", got, first)
	}

	c2, k2 := ca.Issue(t, testcerts.Loopback("tenantmesh-admin"))
	replaceFile(t, cfg.AdminTLSKey, k2)
	replaceFile(t, cfg.AdminTLSCert, c2)
	if got, want := servedSerial(t, cfg.AdminListen, ca.Pool()), leafSerial(t, c2); got.Cmp(want) != 0 {
		t.Fatalf("after renaming a new pair in: served serial %v, want %v", got, want)
	}

	c3, k3 := ca.Issue(t, testcerts.Loopback("tenantmesh-admin"))
	for path, data := range map[string][]byte{cfg.AdminTLSCert: c3, cfg.AdminTLSKey: k3} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := servedSerial(t, cfg.AdminListen, ca.Pool()), leafSerial(t, c3); got.Cmp(want) != 0 {
		t.Fatalf("after rewriting the pair in place: served serial %v, want %v", got, want)
	}
}

// countingHandler counts warnings.
type countingHandler struct {
	slog.Handler
	mu    sync.Mutex
	warns int
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.mu.Lock()
		h.warns++
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.warns
}

// Halfway through a rotation (new certificate, old key) the pair does not
// load: the previous certificate stays in use, the problem is logged once,
// and the complete new pair is picked up. A pair that never loads fails
// at start.
func TestCertReloaderHalfDoneRotation(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "test CA")
	certFile, keyFile := ca.WriteLeaf(t, dir, "srv", testcerts.Loopback("srv"))
	first := leafSerial(t, readBytes(t, certFile))
	h := &countingHandler{Handler: slog.NewTextHandler(io.Discard, nil)}
	r, err := newCertReloader(certFile, keyFile, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	serving := func() *big.Int {
		c, err := r.GetCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("GetCertificate: %v %v", c, err)
		}
		return c.Leaf.SerialNumber
	}
	c2, k2 := ca.Issue(t, testcerts.Loopback("srv"))
	replaceFile(t, certFile, c2)
	for range 3 {
		if got := serving(); got.Cmp(first) != 0 {
			t.Fatalf("certificate replaced, key not yet: serving %v, want the previous %v", got, first)
		}
	}
	if n := h.count(); n != 1 {
		t.Errorf("%d warnings for one broken state of the files, want 1", n)
	}
	replaceFile(t, keyFile, k2)
	if got, want := serving(), leafSerial(t, c2); got.Cmp(want) != 0 {
		t.Fatalf("after the key: serving %v, want %v", got, want)
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if got, want := serving(), leafSerial(t, c2); got.Cmp(want) != 0 {
		t.Fatalf("certificate file removed: serving %v, want the last good %v", got, want)
	}

	_, otherKey := ca.WriteLeaf(t, dir, "other", testcerts.Loopback("other"))
	c4, _ := ca.WriteLeaf(t, dir, "mismatch", testcerts.Loopback("mismatch"))
	if _, err := newCertReloader(c4, otherKey, slog.New(h)); err == nil {
		t.Fatal("newCertReloader accepted a certificate with another certificate's key")
	}
	if _, err := newCertReloader(filepath.Join(dir, "missing.crt"), otherKey, slog.New(h)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("newCertReloader with a missing certificate: %v", err)
	}
}
