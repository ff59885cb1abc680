package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ClientConfig says how to reach an etcd cluster.
type ClientConfig struct {
	Endpoints []string
	// CA, Cert and Key are PEM files; CA alone enables TLS with server
	// verification, Cert and Key add a client certificate.
	CA, Cert, Key string
	Username      string
	Password      string
	// DialTimeout bounds establishing the connection (default 3s).
	DialTimeout time.Duration
}

// ErrUnreachable is returned (wrapped, naming the endpoints) when etcd
// does not answer.
var ErrUnreachable = errors.New("etcd is unreachable")

// NewClient returns an etcd client for cfg. It does not contact etcd;
// see Ping.
func NewClient(cfg ClientConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoints given")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	tlsCfg, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	eps := make([]string, len(cfg.Endpoints))
	for i, ep := range cfg.Endpoints {
		// Accept host:port as users type it; clientv3 wants a scheme to
		// pick TLS.
		if !strings.Contains(ep, "://") {
			if tlsCfg != nil {
				ep = "https://" + ep
			} else {
				ep = "http://" + ep
			}
		}
		eps[i] = ep
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		// The client's own zap logs duplicate the errors we return.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return cli, nil
}

func clientTLS(cfg ClientConfig) (*tls.Config, error) {
	if cfg.CA == "" && cfg.Cert == "" && cfg.Key == "" {
		return nil, nil
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("--etcd-cert and --etcd-key go together")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificates found", cfg.CA)
		}
		tc.RootCAs = pool
	}
	if cfg.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Ping checks that etcd answers a read of the store's prefix within
// timeout, and returns an error wrapping ErrUnreachable that names the
// endpoints otherwise.
func (s *Store) Ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := s.cli.Get(ctx, s.prefix+auditHeadKey, clientv3.WithCountOnly())
	if err == nil {
		return nil
	}
	if ctx.Err() != nil || status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded {
		return fmt.Errorf("%w at %s (no answer within %s)", ErrUnreachable, strings.Join(s.cli.Endpoints(), ","), timeout)
	}
	return fmt.Errorf("etcd at %s: %w", strings.Join(s.cli.Endpoints(), ","), err)
}
