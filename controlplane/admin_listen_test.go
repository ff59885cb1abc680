package controlplane

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The public listener, the one every sidecar reaches, serves the JWKS and
// the probes and nothing an operator's endpoint shows; the private one
// serves those and not the public ones. Over real listeners of Run.
func TestAdminListenersSplitPaths(t *testing.T) {
	gate := &gatePart{open: true}
	cfg := testConfig(t)
	cfg.Preload = "testdata/preload-a"
	cfg.ExtraParts = []PartFactory{func(*Env) (Part, error) { return gate, nil }}
	startRun(t, cfg)
	public, private := "http://"+cfg.AdminListen, "http://"+cfg.AdminPrivateListen
	eventually(t, public+"/readyz", "ready", func(r httpResult) bool { return r.code == 200 })

	for _, path := range []string{"/healthz", "/readyz", "/.well-known/jwks.json"} {
		if r, err := get(public + path); err != nil || r.code != 200 {
			t.Errorf("public %s: %v %d %q", path, err, r.code, r.body)
		}
		if r, err := get(private + path); err != nil || r.code != 404 {
			t.Errorf("private %s: %v %d, want 404", path, err, r.code)
		}
	}
	if r, _ := get(public + "/.well-known/jwks.json"); !strings.Contains(r.body, `"keys"`) {
		t.Errorf("public JWKS body %q", r.body)
	}
	for _, path := range []string{"/metrics", "/debug/catalog", "/debug/xds", "/debug/pprof/", "/debug/pprof/heap", "/debug/gate"} {
		if r, err := get(public + path); err != nil || r.code != 404 {
			t.Errorf("public %s: %v %d %.80q, want 404", path, err, r.code, r.body)
		}
		if r, err := get(private + path); err != nil || r.code != 200 {
			t.Errorf("private %s: %v %d %.80q", path, err, r.code, r.body)
		}
	}
	for _, path := range []string{"/", "/nope", "/debug"} {
		if r, err := get(public + path); err != nil || r.code != 404 {
			t.Errorf("public %s: %v %d, want 404", path, err, r.code)
		}
		if r, err := get(private + path); err != nil || r.code != 404 {
			t.Errorf("private %s: %v %d, want 404", path, err, r.code)
		}
	}
}

// The public filter matches the request's path as sent: a path that a
// ServeMux would clean into /debug/... is refused, not redirected to it.
func TestPublicOnlyRefusesUncleanPaths(t *testing.T) {
	adm := newAdmin(prometheus.NewRegistry(), quietLogger())
	h := publicOnly(adm.mux)
	for _, target := range []string{"/healthz/../debug/catalog", "//debug/catalog", "/./metrics", "/healthz/", "/HEALTHZ", "/debug/pprof/cmdline"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "http://admin"+"/x", nil)
		req.URL.Path = target // as a raw request line would carry it
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("public %s: %d %q, want 404", target, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("public /healthz: %d", rec.Code)
	}
}

func TestLiteralLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9103": true, "127.1.2.3:9103": true, "[::1]:9103": true, "localhost:9103": true,
		"0.0.0.0:9103": false, ":9103": false, "[::]:9103": false, "10.0.0.5:9103": false, "192.168.1.1:0": false,
		"9103": false,
	} {
		err := literalLoopback(addr)
		if (err == nil) != ok {
			t.Errorf("literalLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

// Run refuses a private address that is not loopback before binding
// anything, and names the flag that allows it.
func TestPrivateAdminRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		cfg := testConfig(t)
		cfg.AdminPrivateListen = addr
		// Bounded: a Run that accepted the address would serve until
		// cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := Run(ctx, cfg)
		cancel()
		if err == nil || !errors.Is(err, errNotLoopback) || !strings.Contains(err.Error(), "--admin-private-allow-remote") {
			t.Errorf("Run with --admin-private-listen %s: %v", addr, err)
		}
		// Nothing was started: the public address is still free.
		l, lerr := net.Listen("tcp", cfg.AdminListen)
		if lerr != nil {
			t.Errorf("public admin address bound after a refused start: %v", lerr)
			continue
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A host name is checked against the address it bound to.
func TestBoundLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := boundLoopback(l); err != nil {
		t.Errorf("localhost: %v", err)
	}
	all, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if err := boundLoopback(all); !errors.Is(err, errNotLoopback) {
		t.Errorf("every interface: %v, want errNotLoopback", err)
	}
}

// With --admin-private-allow-remote the private listener binds every
// interface and serves there.
func TestPrivateAdminAllowRemote(t *testing.T) {
	cfg := testConfig(t)
	_, port, err := net.SplitHostPort(cfg.AdminPrivateListen)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminPrivateListen, cfg.AdminPrivateAllowRemote = "0.0.0.0:"+port, true
	startRun(t, cfg)
	eventually(t, "http://127.0.0.1:"+port+"/metrics", "metrics on the remote-allowed private listener", func(r httpResult) bool {
		return r.code == 200 && strings.Contains(r.body, "go_goroutines")
	})
}

func TestAdminTLSFlagsGoTogether(t *testing.T) {
	cfg := testConfig(t).withDefaults()
	cfg.AdminTLSCert = "cert.pem"
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "--admin-tls-key") {
		t.Fatalf("validate with a certificate and no key: %v", err)
	}
}
