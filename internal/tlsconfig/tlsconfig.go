// Package tlsconfig serves TLS from PEM files that change while the
// server runs: certificates rotated by cert-manager, SPIRE or `tenantmesh
// certs` are picked up without a restart, and connections already open
// keep the session they negotiated (a TLS session is not renegotiated
// because the files changed), so long-lived ADS streams survive a
// rotation.
package tlsconfig

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often the files are checked for changes.
// Polling (a hash of the three files) rather than inotify: it needs no
// dependency and also sees the symlink swap Kubernetes does on a Secret
// volume update, which a watch on the file itself would miss.
const DefaultReloadInterval = 5 * time.Second

// Mode is how a server accepts connections.
type Mode string

// The modes, as `serve` logs them.
const (
	ModePlaintext Mode = "plaintext"
	ModeTLS       Mode = "tls"  // server authenticated, any client
	ModeMTLS      Mode = "mtls" // client certificate required and verified
)

// Files are the PEM files of a TLS server.
type Files struct {
	// Cert (chain, leaf first) and Key are the server's certificate.
	Cert, Key string
	// ClientCA, when set, makes TLS mutual: a client must present a
	// certificate that chains to one of these CAs.
	ClientCA string
}

// Mode is what f configures.
func (f Files) Mode() Mode {
	switch {
	case f.Cert == "" && f.Key == "" && f.ClientCA == "":
		return ModePlaintext
	case f.ClientCA != "":
		return ModeMTLS
	default:
		return ModeTLS
	}
}

// Validate reports an incomplete set of files (flag names are the
// caller's: prefix names them, e.g. "--xds-tls").
func (f Files) Validate(prefix string) error {
	if f.Mode() == ModePlaintext {
		return nil
	}
	if f.Cert == "" || f.Key == "" {
		return fmt.Errorf("%s-cert and %s-key go together (%s-client-ca needs both: mutual TLS is TLS first)", prefix, prefix, prefix)
	}
	return nil
}

// material is one loaded generation of the files.
type material struct {
	config *tls.Config
	leaf   *x509.Certificate
	sum    [sha256.Size]byte
}

// Server hands out the current TLS configuration of one server.
type Server struct {
	files Files
	log   *slog.Logger
	cur   atomic.Pointer[material]
	// failedSum is the content hash of the last set that failed to load,
	// so a half-rotated set is reported once, not on every poll.
	mu        sync.Mutex
	failedSum [sha256.Size]byte
}

// NewServer loads f (which must not be plaintext); an unreadable or
// inconsistent set is an error, so `serve` fails at start, not at the
// first handshake.
func NewServer(f Files, log *slog.Logger) (*Server, error) {
	if f.Mode() == ModePlaintext || f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS server needs a certificate and a key")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{files: f, log: log}
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// Mode is ModeTLS or ModeMTLS.
func (s *Server) Mode() Mode { return s.files.Mode() }

// Leaf is the server certificate in use.
func (s *Server) Leaf() *x509.Certificate { return s.cur.Load().leaf }

// Config is the tls.Config to serve with. Every handshake takes the
// generation loaded last (GetConfigForClient), so a reload applies to the
// next connection without touching open ones.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().config, nil
		},
	}
}

// Reload re-reads the files and swaps them in if they changed and load.
// A set that does not load (a rotation caught between the certificate
// and the key) leaves the previous one in use and returns the error.
func (s *Server) Reload() (changed bool, err error) {
	changed, _, err = s.reload()
	return changed, err
}

// reload is Reload that also says whether a failure is new (not the same
// file contents that failed last time).
func (s *Server) reload() (changed, newFailure bool, err error) {
	raw, sum, err := s.files.read()
	if err == nil {
		if sum == s.cur.Load().sum {
			return false, false, nil
		}
		var m *material
		if m, err = s.files.build(raw, sum); err == nil {
			s.cur.Store(m)
			return true, false, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	newFailure = sum != s.failedSum || sum == [sha256.Size]byte{}
	s.failedSum = sum
	return false, newFailure, err
}

// Watch reloads every interval until ctx ends, logging what changed.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, newFailure, err := s.reload()
		switch {
		case err != nil && newFailure:
			s.log.Warn("TLS files changed but do not load; still serving the previous certificate", "cert", s.files.Cert, "error", err)
		case changed:
			leaf := s.Leaf()
			s.log.Info("TLS files reloaded", "cert", s.files.Cert, "client_ca", s.files.ClientCA,
				"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
}

// read returns the files' contents (cert, key, client CA) and a hash of
// them, each length-prefixed. What is parsed is what was hashed: the
// files may change between two reads.
func (f Files) read() (raw [3][]byte, sum [sha256.Size]byte, err error) {
	h := sha256.New()
	for i, p := range []string{f.Cert, f.Key, f.ClientCA} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return raw, sum, fmt.Errorf("read %s: %w", p, err)
		}
		raw[i] = b
		// hash.Hash.Write never returns an error.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	copy(sum[:], h.Sum(nil))
	return raw, sum, nil
}

func (s *Server) load() (*material, error) {
	raw, sum, err := s.files.read()
	if err != nil {
		return nil, err
	}
	return s.files.build(raw, sum)
}

// build parses one generation of the files.
func (f Files) build(raw [3][]byte, sum [sha256.Size]byte) (*material, error) {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", f.Cert, err)
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("TLS certificate %s expired at %s", f.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cfg := &tls.Config{
		// TLS 1.3 is negotiated whenever the client has it (crypto/tls
		// prefers the highest common version); 1.2 stays for clients that
		// do not, e.g. an older Envoy built against BoringSSL defaults.
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
		// No resumption: a resumed session would skip verification
		// against the client CA loaded now, and xDS connections are
		// long-lived, so a full handshake costs nothing that matters.
		SessionTicketsDisabled: true,
	}
	if f.ClientCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", f.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &material{config: cfg, leaf: leaf, sum: sum}, nil
}

// IsLoopback reports whether a listen address host:port binds loopback
// only: 127.0.0.0/8, ::1 or "localhost". An empty host, 0.0.0.0 and ::
// bind every interface.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
