package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// serve's embedded etcd takes the transactions of a batched apply
// (store.BatchTxnOps operations), which etcd's default refuses.
func TestEmbeddedEtcdTakesBatchTransactions(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), EmbeddedEtcdListen: freeAddr(t), EmbeddedEtcdPeerListen: freeAddr(t)}
	e, err := startEmbeddedEtcd(cfg, slog.New(slog.DiscardHandler), &atomic.Bool{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Clients[0].Addr().String()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	puts := func(n int) error {
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("/limits/%04d", i), "v")
		}
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		return err
	}
	if err := puts(store.BatchTxnOps); err != nil {
		t.Fatalf("transaction of %d operations: %v", store.BatchTxnOps, err)
	}
	if err := puts(store.BatchTxnOps + 1); !errors.Is(err, rpctypes.ErrTooManyOps) {
		t.Fatalf("transaction of %d operations: %v, want too many operations", store.BatchTxnOps+1, err)
	}
}
