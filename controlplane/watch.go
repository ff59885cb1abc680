package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// storeWatch is the part that runs the store's watch and hands every
// Catalog to the sinks.
type storeWatch struct {
	st     *store.Store
	sinks  []Sink
	latest atomic.Pointer[tenants.Catalog]
	// delivered is set once every sink got the first Catalog, which is
	// when serving may begin (never serve before the first sync:
	// docs/architecture.md#rules-that-hold-everywhere).
	delivered atomic.Bool
}

// Name implements Part.
func (w *storeWatch) Name() string { return "store" }

// Start implements Part: it runs the store watch until ctx ends.
func (w *storeWatch) Start(ctx context.Context) error {
	return w.st.Watch(ctx, func(c *tenants.Catalog) {
		for _, s := range w.sinks {
			s.Update(c)
		}
		w.latest.Store(c)
		w.delivered.Store(true)
	})
}

// Ready implements Part: ready once every sink got the first Catalog.
func (w *storeWatch) Ready() error {
	if !w.delivered.Load() {
		if err := w.st.LastError(); err != nil {
			return fmt.Errorf("not synced with etcd yet: %w", err)
		}
		return errors.New("not synced with etcd yet")
	}
	return nil
}

// Degraded reports a failing etcd while the last Catalog is served.
func (w *storeWatch) Degraded() error {
	if err := w.st.LastError(); err != nil {
		return fmt.Errorf("serving the catalog of revision %d; etcd: %w", w.st.Revision(), err)
	}
	return nil
}

// Catalog returns the latest Catalog, nil before the first.
func (w *storeWatch) Catalog() *tenants.Catalog { return w.latest.Load() }
