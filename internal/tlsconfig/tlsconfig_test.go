package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
)

const td = "test.local"

type pki struct {
	ca     *devca.CA
	dir    string // the server's tls.crt/tls.key/ca.crt
	client tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := devca.NewCA(td, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, dir: t.TempDir()}
	p.issueServer(t)
	l, err := ca.Issue(devca.Request{ID: identity.Edge(td, "e1"), Usage: devca.ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	if p.client, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pki) issueServer(t *testing.T) *devca.Leaf {
	t.Helper()
	l, err := p.ca.IssueTo(p.dir, devca.Request{ID: identity.ControlPlane(td), IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (p *pki) files(mtls bool) Files {
	f := Files{Cert: filepath.Join(p.dir, devca.CertFile), Key: filepath.Join(p.dir, devca.KeyFile)}
	if mtls {
		f.ClientCA = filepath.Join(p.dir, devca.CACertFile)
	}
	return f
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve accepts TLS connections with cfg and completes their handshakes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if err := c.(*tls.Conn).Handshake(); err == nil {
					// Hold the connection until the client closes it.
					for buf := make([]byte, 512); ; {
						if _, err := c.Read(buf); err != nil {
							break
						}
					}
				}
				if err := c.Close(); err != nil {
					return
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr and returns the server's leaf certificate.
func handshake(addr string, ca *devca.CA, cert *tls.Certificate) (*tls.Conn, error) {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	// TLS 1.3 delivers a client-certificate refusal after the handshake:
	// a read surfaces it.
	if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		return nil, err
	}
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func TestModesAndValidate(t *testing.T) {
	for f, want := range map[Files]Mode{
		{}:                                    ModePlaintext,
		{Cert: "c", Key: "k"}:                 ModeTLS,
		{Cert: "c", Key: "k", ClientCA: "ca"}: ModeMTLS,
	} {
		if got := f.Mode(); got != want {
			t.Errorf("%+v: mode %s, want %s", f, got, want)
		}
		if err := f.Validate("--x-tls"); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
	for _, f := range []Files{{Cert: "c"}, {Key: "k"}, {ClientCA: "ca"}, {Cert: "c", ClientCA: "ca"}} {
		if err := f.Validate("--x-tls"); err == nil || !strings.Contains(err.Error(), "--x-tls-cert") {
			t.Errorf("%+v: Validate = %v, want an error naming --x-tls-cert", f, err)
		}
	}
}

func TestNewServerRefusesBrokenFiles(t *testing.T) {
	p := newPKI(t)
	good := p.files(true)
	other, err := p.ca.Issue(devca.Request{ID: identity.Edge(td, "x"), Usage: devca.ClientAuth})
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong.key")
	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(wrongKey, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]Files{
		"missing cert":    {Cert: filepath.Join(p.dir, "nope.crt"), Key: good.Key},
		"key of another":  {Cert: good.Cert, Key: wrongKey},
		"client CA junk":  {Cert: good.Cert, Key: good.Key, ClientCA: notPEM},
		"no key":          {Cert: good.Cert},
		"plaintext files": {},
	} {
		if _, err := NewServer(f, quiet()); err == nil {
			t.Errorf("%s: NewServer accepted %+v", name, f)
		}
	}
}

func TestMutualTLSRequiresAClientCertificateOfTheCA(t *testing.T) {
	p := newPKI(t)
	s, err := NewServer(p.files(true), quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.Config())
	c, err := handshake(addr, p.ca, &p.client)
	if err != nil {
		t.Fatalf("client of the CA refused: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3 (both ends support it)", tls.VersionName(v))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := handshake(addr, p.ca, nil); err == nil {
		t.Errorf("client without a certificate accepted (%v)", c.Close())
	}
	stranger := newPKI(t)
	if c, err := handshake(addr, p.ca, &stranger.client); err == nil {
		t.Errorf("client with a certificate of another CA accepted (%v)", c.Close())
	}
	// TLS 1.2 still works: 1.2 is the minimum, 1.3 the preference.
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	c12, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.client}})
	if err != nil {
		t.Fatalf("TLS 1.2 client refused: %v", err)
	}
	if err := c12.Close(); err != nil {
		t.Fatal(err)
	}
	if c11, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11, Certificates: []tls.Certificate{p.client}}); err == nil {
		t.Errorf("TLS 1.1 client accepted (%v)", c11.Close())
	}
}

func TestReloadSwapsCertificateForNewHandshakesOnly(t *testing.T) {
	p := newPKI(t)
	s, err := NewServer(p.files(true), quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s.Config())
	old := s.Leaf()
	open, err := handshake(addr, p.ca, &p.client)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := open.Close(); err != nil {
			t.Error(err)
		}
	}()
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("Reload of unchanged files: changed %v, %v", changed, err)
	}

	fresh := p.issueServer(t)
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("Reload after rotation: changed %v, %v", changed, err)
	}
	if !s.Leaf().Equal(fresh.Cert) || s.Leaf().Equal(old) {
		t.Fatal("Leaf is not the rotated certificate")
	}
	c, err := handshake(addr, p.ca, &p.client)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0]; !got.Equal(fresh.Cert) {
		t.Errorf("new handshake got serial %s, want the rotated %s", got.SerialNumber, fresh.Cert.SerialNumber)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The connection opened before keeps its session.
	if got := open.ConnectionState().PeerCertificates[0]; !got.Equal(old) {
		t.Error("the connection opened before the rotation changed certificate")
	}
	if _, err := open.Write([]byte("still open")); err != nil {
		t.Errorf("connection opened before the rotation: %v", err)
	}
}

func TestHalfRotationKeepsTheLoadedCertificate(t *testing.T) {
	p := newPKI(t)
	f := p.files(false)
	s, err := NewServer(f, quiet())
	if err != nil {
		t.Fatal(err)
	}
	old := s.Leaf()
	// A new certificate without its key yet, as a non-atomic copy leaves it.
	other, err := p.ca.Issue(devca.Request{ID: identity.ControlPlane(td), Usage: devca.ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Cert, other.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err == nil {
		t.Fatalf("half rotation: changed %v, err %v; want an error and no change", changed, err)
	}
	if !s.Leaf().Equal(old) {
		t.Fatal("a cert without its key replaced the working pair")
	}
	// The key arrives: the next reload takes both.
	if err := os.WriteFile(f.Key, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("completed rotation: changed %v, %v", changed, err)
	}
	if !s.Leaf().Equal(other.Cert) {
		t.Error("completed rotation not in use")
	}
}

func TestWatchPicksUpRotation(t *testing.T) {
	p := newPKI(t)
	s, err := NewServer(p.files(true), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	fresh := p.issueServer(t)
	deadline := time.Now().Add(5 * time.Second)
	for !s.Leaf().Equal(fresh.Cert) {
		if time.Now().After(deadline) {
			t.Fatal("Watch never loaded the rotated certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:18000": true, "127.0.0.2:1": true, "[::1]:18000": true, "localhost:9191": true,
		"0.0.0.0:18000": false, ":18000": false, "[::]:18000": false, "10.0.0.7:18000": false,
		"tenantmesh:18000": false, "127.0.0.1": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestClientFiles(t *testing.T) {
	p := newPKI(t)
	f := p.files(true)
	cfg, err := ClientFiles{CA: f.ClientCA, Cert: f.Cert, Key: f.Key, ServerName: "cp.internal"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || cfg.ServerName != "cp.internal" || cfg.RootCAs == nil {
		t.Errorf("client config %+v", cfg)
	}
	for name, c := range map[string]ClientFiles{
		"no CA":            {Cert: f.Cert, Key: f.Key},
		"cert without key": {CA: f.ClientCA, Cert: f.Cert},
		"CA not PEM":       {CA: f.Key},
		"missing CA":       {CA: filepath.Join(p.dir, "nope")},
	} {
		if _, err := c.Config(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
