// Package etcddiag explains why an etcd endpoint does not answer. The etcd
// client waits for a usable connection and then reports only a deadline,
// the same whether nothing listens, the TLS handshake fails, or etcd
// refuses the client certificate; Diagnose probes the endpoint itself and
// says which, and which flag to fix.
package etcddiag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Files are the client's TLS files (--etcd-ca, --etcd-cert, --etcd-key).
type Files struct{ CA, Cert, Key string }

func (f Files) set() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// ErrNotListening is returned (wrapped) when nothing accepts TCP
// connections at the endpoint: etcd is down or the address is wrong, not
// a TLS problem.
var ErrNotListening = errors.New("nothing accepts connections")

// probeTimeout bounds each step of a probe.
const probeTimeout = 2 * time.Second

// Diagnose probes endpoint (host:port or URL) as the etcd client with f
// would, and returns why it cannot work, or nil when it finds nothing
// wrong at the TCP and TLS level (etcd may then be slow, or refuse the
// request itself).
func Diagnose(ctx context.Context, endpoint string, f Files) error {
	host, useTLS, err := hostPort(endpoint, f.set())
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrNotListening, host, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return fmt.Errorf("probe %s: %w", host, err)
	}
	serverName, _, err := net.SplitHostPort(host)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if !useTLS {
		// Only to tell a TLS server from a plaintext one: nothing is
		// trusted or sent over this handshake.
		c := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: serverName, MinVersion: tls.VersionTLS12}) //nolint:gosec // detection only
		if err := c.HandshakeContext(ctx); err == nil || isRemoteAlert(err) {
			return fmt.Errorf("etcd at %s serves TLS, and no TLS was configured: give --etcd-ca (and --etcd-cert/--etcd-key if it requires client certificates)", host)
		}
		return nil // a plaintext server, as configured
	}
	cfg, err := clientConfig(f)
	if err != nil {
		return err
	}
	cfg.ServerName = serverName
	c := tls.Client(conn, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		return handshakeProblem(host, f, err)
	}
	// With TLS 1.3 the server checks the client certificate after the
	// client's side of the handshake is done: its verdict is an alert on
	// the first read. etcd sends nothing first, so a timeout means the
	// certificate was accepted.
	if _, err := c.Read(make([]byte, 1)); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return handshakeProblem(host, f, err)
	}
	return nil
}

// Explain diagnoses each endpoint and returns the first problem other than
// nothing listening (which the caller already reports as etcd being
// unreachable), or nil.
func Explain(ctx context.Context, endpoints []string, f Files) error {
	for _, ep := range endpoints {
		if err := Diagnose(ctx, ep, f); err != nil && !errors.Is(err, ErrNotListening) {
			return err
		}
	}
	return nil
}

// hostPort reads host:port or a URL; a https URL or TLS files mean TLS,
// as in store.NewClient.
func hostPort(endpoint string, tlsFiles bool) (string, bool, error) {
	if !strings.Contains(endpoint, "://") {
		return endpoint, tlsFiles, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	return u.Host, u.Scheme == "https" || tlsFiles, nil
}

// handshakeProblem names what the failed handshake says about the flags.
func handshakeProblem(host string, f Files, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("etcd's certificate at %s is not signed by a CA of --etcd-ca %s: %w", host, f.CA, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("etcd's certificate is not valid for %s (use an endpoint name it is issued for): %w", host, err)
	case errors.As(err, &record):
		return fmt.Errorf("etcd at %s does not speak TLS: drop --etcd-ca/--etcd-cert/--etcd-key, or use its TLS address: %w", host, err)
	case isRemoteAlert(err):
		if f.Cert == "" {
			return fmt.Errorf("etcd at %s requires a client certificate: give --etcd-cert and --etcd-key (%w)", host, err)
		}
		return fmt.Errorf("etcd at %s refused the client certificate --etcd-cert %s (is it signed by the CA etcd trusts for clients?): %w", host, f.Cert, err)
	}
	return fmt.Errorf("TLS handshake with etcd at %s: %w", host, err)
}

// isRemoteAlert reports whether err is a TLS alert the server sent (crypto/tls
// returns those as a net.OpError "remote error").
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// clientConfig is the TLS configuration store.NewClient builds from f.
func clientConfig(f Files) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificates found", f.CA)
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}
