package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// CompactActor is the audit label of the retention summaries serve writes.
const CompactActor = "retention"

// auditOptions loads (or creates) the audit signing key and the further
// verifying keys, and resolves who the etcd client is authenticated as.
// An embedded etcd has no authentication: its writers have no identity.
func auditOptions(cfg Config, cli *clientv3.Client, external bool, log *slog.Logger) (store.AuditOptions, error) {
	var o store.AuditOptions
	key, created, err := store.LoadOrCreateAuditKey(cfg.AuditKeyFile)
	if err != nil {
		return o, fmt.Errorf("audit signing key: %w", err)
	}
	if created {
		log.Warn("created a new audit signing key: replicas and the CLI (--audit-key-file) must share this file, and verifiers need its public key (tenantmesh audit public-key)", "file", cfg.AuditKeyFile, "key_id", key.ID())
	} else {
		log.Info("audit signing key loaded", "file", cfg.AuditKeyFile, "key_id", key.ID())
	}
	o.Key = key
	o.Keyring = store.AuditKeyring{}
	for _, p := range cfg.AuditPublicKeys {
		if err := o.Keyring.LoadAuditPublicKeys(p); err != nil {
			return o, fmt.Errorf("--audit-public-key: %w", err)
		}
	}
	if external {
		// Asked at the first write: serve starts while etcd is away.
		o.IdentityFrom = store.NewIdentityResolver(cli, cfg.clientConfig())
	}
	return o, nil
}

// auditCompactor is the part that applies the tenants' audit retention
// every interval. Every replica runs it; the store's compares let only
// one compaction of the same records land.
type auditCompactor struct {
	st    *store.Store
	every time.Duration
	log   *slog.Logger
	mu    sync.Mutex
	err   error
}

// Name implements Part.
func (a *auditCompactor) Name() string { return "audit" }

// Start implements Part: it compacts every a.every until ctx ends. A
// failure (a trail that does not verify, etcd away) is logged and shown
// by Degraded; it does not stop serving.
func (a *auditCompactor) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(a.every):
		}
		done, err := a.st.AuditCompact(ctx, CompactActor, false)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.log.Error("audit retention compaction failed", "error", err)
			err = fmt.Errorf("audit retention compaction: %w", err)
		} else if len(done) > 0 {
			a.log.Info("audit retention compaction done", "summaries", len(done))
		}
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
	}
}

// Ready implements Part: compaction never holds serving back.
func (a *auditCompactor) Ready() error { return nil }

// Degraded reports the last compaction's failure.
func (a *auditCompactor) Degraded() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
