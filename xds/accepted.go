package xds

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// AcceptedStore keeps each tenant's last accepted version across
// restarts (tenants/store: accepted/<tenant>), so that a NACK after a
// restart rolls back to it rather than to nothing.
type AcceptedStore interface {
	// ListAccepted returns the stored accepted versions by tenant id, as
	// stored (a Catalog has not admitted them), with their revision as
	// resourceVersion.
	ListAccepted(ctx context.Context) (map[string]*tenants.Tenant, error)
	// WriteAccepted records t as its tenant's accepted version. It
	// reports false when it did not write because the tenant no longer
	// exists as the object t is a version of.
	WriteAccepted(ctx context.Context, t *tenants.Tenant) (bool, error)
}

// persister writes accepted versions to an AcceptedStore and reads them
// back at start. Its fields are guarded by Server.mu.
type persister struct {
	store AcceptedStore // nil: nothing is persisted
	// loaded: the stored versions are in the acceptance (or there is no
	// store); synced: the first catalog is published. Streams wait for
	// both, so that no NACK is handled without what was accepted before.
	loaded, synced bool
	queue          map[string]*tenants.Tenant // by tenant id: the latest to write
	kick           chan struct{}
}

func newPersister(store AcceptedStore) *persister {
	return &persister{store: store, loaded: store == nil, queue: map[string]*tenants.Tenant{}, kick: make(chan struct{}, 1)}
}

// catalogServed notes that a catalog is published and opens the streams
// once the accepted versions are loaded too. Caller holds s.mu.
func (s *Server) catalogServed() {
	s.persist.synced = true
	s.openWhenReady()
}

// openWhenReady closes s.ready once both conditions hold. Caller holds s.mu.
func (s *Server) openWhenReady() {
	if s.persist.synced && s.persist.loaded {
		s.readyOnce.Do(func() { close(s.ready) })
	}
}

// persistAccepted queues the write of tenant id's accepted version unless
// etcd holds it already. Caller holds s.mu.
func (s *Server) persistAccepted(id string) {
	t := s.acc.accepted[id]
	if s.persist.store == nil || t == nil || s.acc.written[id] == t.Metadata.ResourceVersion {
		return
	}
	s.persist.queue[id] = t
	select {
	case s.persist.kick <- struct{}{}:
	default:
	}
}

// runAccepted loads the stored accepted versions, retrying until it
// succeeds, then writes accepted versions as they come until ctx ends.
func (s *Server) runAccepted(ctx context.Context) {
	if s.persist.store == nil {
		return
	}
	backoff := 100 * time.Millisecond
	for {
		err := s.loadAccepted(ctx)
		if err == nil {
			break
		}
		s.log.Warn("cannot read the accepted tenant versions; xDS streams wait", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	var retry <-chan time.Time
	backoff = 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.persist.kick:
		case <-retry:
		}
		retry = nil
		if s.flushAccepted(ctx) {
			backoff = 100 * time.Millisecond
			continue
		}
		retry = time.After(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

// loadAccepted reads the stored accepted versions into the acceptance.
func (s *Server) loadAccepted(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stored, err := s.persist.store.ListAccepted(rctx)
	if err != nil {
		return fmt.Errorf("list accepted tenant versions: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range stored {
		if s.cat != nil {
			if _, ok := s.cat.Tenant(id); !ok {
				continue
			}
		}
		s.acc.written[id] = t.Metadata.ResourceVersion
		if _, known := s.acc.accepted[id]; !known {
			s.acc.stored[id] = t
		}
	}
	s.persist.loaded = true
	s.log.Info("accepted tenant versions loaded", "tenants", len(stored))
	s.openWhenReady()
	return nil
}

// flushAccepted writes the queued versions; false: some failed and are
// queued again.
func (s *Server) flushAccepted(ctx context.Context) bool {
	s.mu.Lock()
	q := s.persist.queue
	s.persist.queue = map[string]*tenants.Tenant{}
	s.mu.Unlock()
	ids := make([]string, 0, len(q))
	for id := range q {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ok := true
	for _, id := range ids {
		t := q[id]
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		wrote, err := s.persist.store.WriteAccepted(wctx, t)
		cancel()
		s.mu.Lock()
		switch {
		case err != nil:
			ok = false
			s.log.Warn("cannot record the accepted version of a tenant; retrying", "tenant_id", id,
				"revision", t.Metadata.ResourceVersion, "err", err)
			if _, newer := s.persist.queue[id]; !newer {
				s.persist.queue[id] = t
			}
		case wrote:
			s.acc.written[id] = t.Metadata.ResourceVersion
		default:
			s.log.Debug("accepted version not recorded: the tenant is gone", "tenant_id", id)
		}
		s.mu.Unlock()
	}
	return ok
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
