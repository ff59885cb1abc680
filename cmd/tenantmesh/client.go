package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/etcddiag"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// dialTimeout bounds how long a command waits for etcd before saying it
// is not there: a CLI must fail in seconds, not hang.
const dialTimeout = 3 * time.Second

// commandTimeout bounds one management command.
const commandTimeout = 60 * time.Second

// connectedStore returns a Store over a client of the global etcd flags,
// after checking that etcd answers. close releases the client.
func (g *globals) connectedStore(ctx context.Context) (st *store.Store, closeFn func(), err error) {
	eps := g.endpoints()
	cli, err := store.NewClient(store.ClientConfig{
		Endpoints: eps,
		CA:        g.etcdCA, Cert: g.etcdCert, Key: g.etcdKey,
		Username: g.etcdUser, Password: g.etcdPassword,
		DialTimeout: dialTimeout,
	})
	if err != nil {
		return nil, nil, err
	}
	closeFn = func() {
		if err := cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(g.stderr, "warning: closing the etcd client: %v\n", err)
		}
	}
	st = store.New(cli, store.Options{Prefix: g.prefix, Logger: quietLogger(g.stderr)})
	if err := st.Ping(ctx, dialTimeout); err != nil {
		closeFn()
		if errors.Is(err, store.ErrUnreachable) {
			// The client reports only a deadline; a TLS problem is the
			// user's flags, not a missing etcd.
			if derr := etcddiag.Explain(ctx, eps, etcddiag.Files{CA: g.etcdCA, Cert: g.etcdCert, Key: g.etcdKey}); derr != nil {
				return nil, nil, derr
			}
			return nil, nil, fmt.Errorf("cannot reach etcd at %s (no answer within %s).\n"+
				"Start the control plane with its embedded etcd in another shell: `tenantmesh serve` (or `make run` in the repository),\n"+
				"or point --etcd-endpoints / %s at your etcd cluster", strings.Join(eps, ","), dialTimeout, envEtcdEndpoints)
		}
		return nil, nil, err
	}
	return st, closeFn, nil
}

// withStore runs fn with a connected store and a bounded context.
func (g *globals) withStore(ctx context.Context, fn func(ctx context.Context, st *store.Store) error) error {
	return g.withStoreFor(ctx, commandTimeout, fn)
}

// withStoreFor is withStore with the command bounded by timeout.
func (g *globals) withStoreFor(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, st *store.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, closeFn, err := g.connectedStore(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(ctx, st)
}
