package store

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Identity prefixes: an audit record's actor says how it was
// authenticated.
const (
	IdentityEtcdUser = "etcd-user:"
	IdentityCert     = "cert:"
)

// ResolveIdentity returns who cli is authenticated to etcd as, for the
// actor of audit records:
//
//   - "etcd-user:<name>" when cfg has a user name and etcd has
//     authentication enabled (the connection would have failed with a
//     wrong password);
//   - else "cert:<subject>" when cfg has a client certificate (etcd checks
//     it against its client CA when it runs with --client-cert-auth);
//   - else "": nothing authenticated the writer, and only the label it
//     gives itself (--actor) is recorded.
func ResolveIdentity(ctx context.Context, cli *clientv3.Client, cfg ClientConfig) (string, error) {
	if cfg.Username != "" {
		st, err := cli.AuthStatus(ctx)
		if err != nil {
			return "", fmt.Errorf("ask etcd whether authentication is enabled: %w", err)
		}
		if st.Enabled {
			return IdentityEtcdUser + cfg.Username, nil
		}
	}
	if cfg.Cert != "" {
		subject, err := certSubject(cfg.Cert)
		if err != nil {
			return "", err
		}
		return IdentityCert + subject, nil
	}
	return "", nil
}

// certSubject is the subject of the first certificate in a PEM file, in
// RFC 2253 form (CN=ops,O=Example).
func certSubject(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("etcd client certificate: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return "", fmt.Errorf("etcd client certificate %s: no PEM CERTIFICATE block", path)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("etcd client certificate %s: %w", path, err)
		}
		return c.Subject.String(), nil
	}
}

// IdentityResolver resolves a client's identity on first use and keeps
// the answer: serve starts before etcd answers, so it cannot ask at
// start. A failed attempt is retried at the next use.
type IdentityResolver struct {
	cli  *clientv3.Client
	cfg  ClientConfig
	mu   sync.Mutex
	done bool
	id   string
}

// NewIdentityResolver returns a resolver of cli's identity (ResolveIdentity).
func NewIdentityResolver(cli *clientv3.Client, cfg ClientConfig) *IdentityResolver {
	return &IdentityResolver{cli: cli, cfg: cfg}
}

// Identity returns the identity, asking etcd the first time.
func (r *IdentityResolver) Identity(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return r.id, nil
	}
	id, err := ResolveIdentity(ctx, r.cli, r.cfg)
	if err != nil {
		return "", err
	}
	r.id, r.done = id, true
	return id, nil
}
