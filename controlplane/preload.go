package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// PreloadActor is the audit actor of preloaded manifests.
const PreloadActor = "preload"

// preload applies the manifests in dir when the store holds no tenants
// yet. A manifest problem stops the start (the operator asked for those
// manifests); an unreachable etcd is retried until ctx ends.
func preload(ctx context.Context, st *store.Store, dir string, log *slog.Logger) error {
	docs, err := tenants.Load(dir, nil)
	if err != nil {
		return fmt.Errorf("--preload %s: %w", dir, err)
	}
	backoff := 200 * time.Millisecond
	for {
		err := preloadOnce(ctx, st, dir, docs, log)
		var invalid tenants.ErrorList
		switch {
		case err == nil:
			return nil
		case errors.As(err, &invalid):
			return fmt.Errorf("--preload %s: %w", dir, err)
		}
		log.Warn("preload: etcd not available yet, retrying", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func preloadOnce(ctx context.Context, st *store.Store, dir string, docs []tenants.Document, log *slog.Logger) error {
	n, err := st.Count(ctx, tenants.KindTenant)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("preload skipped: the store already holds tenants", "dir", dir, "tenants", n)
		return nil
	}
	res, err := st.Apply(ctx, docs, store.ApplyOptions{Actor: PreloadActor})
	if err != nil {
		return err
	}
	log.Info("preloaded manifests", "dir", dir, "objects", len(res.Objects), "revision", res.Revision)
	return nil
}
