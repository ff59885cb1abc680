package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Backoff between failed reads of etcd.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Watch reads everything under the prefix, hands the resulting Catalog to
// onCatalog, then watches from the read's revision + 1 and hands over a
// new Catalog after every change. It blocks until ctx ends and returns
// nil then.
//
// onCatalog is never called concurrently; when it is slower than etcd
// changes, intermediate Catalogs are skipped and it gets the latest. On a
// compacted, canceled or broken watch the store reads everything again
// and watches anew, so no change is lost; while etcd is unreachable the
// last Catalog stays in force and reads are retried with backoff.
func (s *Store) Watch(ctx context.Context, onCatalog func(*tenants.Catalog)) error {
	pub := newPublisher()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pub.run(ctx, onCatalog)
	}()
	defer wg.Wait()

	st := newCatalogState(s)
	backoff := minBackoff
	for ctx.Err() == nil {
		if err := s.load(ctx, st); err != nil {
			if ctx.Err() != nil {
				break
			}
			s.setLastError(err)
			s.log.Warn("cannot read etcd; keeping the last catalog", "error", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff = minBackoff
		s.setLastError(nil)
		st.build(ctx, pub.publish)
		if !s.synced.Swap(true) {
			s.metrics.synced.Set(1)
			s.log.Info("store synced", "revision", st.rev, "tenants", len(st.tenants))
		}
		reason := s.follow(ctx, st, pub)
		if ctx.Err() != nil {
			break
		}
		s.metrics.watchRestarts.WithLabelValues(reason).Inc()
		s.log.Info("re-reading etcd and restarting the watch", "reason", reason, "revision", st.rev)
	}
	return nil
}

// load reads every key the Catalog is built from, at one revision.
func (s *Store) load(ctx context.Context, st *catalogState) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dirs := []string{tenantsDir, tiersDir, meshConfigDir, sharedDir, apiKeysDir, statusDir}
	ops := make([]clientv3.Op, len(dirs))
	for i, d := range dirs {
		ops[i] = clientv3.OpGet(s.prefix+d, clientv3.WithPrefix())
	}
	resp, err := s.cli.Txn(rctx).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("read %s: %w", s.prefix, err)
	}
	var kvs []keyValue
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			kvs = append(kvs, keyValue{key: string(kv.Key), value: kv.Value, modRev: kv.ModRevision})
		}
	}
	st.reset(kvs, resp.Header.Revision)
	return nil
}

// follow watches from st.rev + 1 and applies changes until the watch
// breaks, and returns why it broke.
func (s *Store) follow(ctx context.Context, st *catalogState, pub *publisher) string {
	var ch clientv3.WatchChan
	cancel := func() {}
	watch := func() {
		// RequireLeader: a member cut off from the quorum cancels the watch
		// (we re-read elsewhere) instead of silently delivering nothing.
		// The price is a slower resume after a single-member restart.
		wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
		cancel = stop
		ch = s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(st.rev+1))
	}
	watch()
	defer func() { cancel() }()
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-ctx.Done():
			return "shutdown"
		case resume := <-s.pauseWatch:
			// Test hook: drop the watch as a network break would, then
			// resume from where we were, as clientv3 does on reconnect.
			cancel()
			<-resume
			watch()
			continue
		case resp, ok = <-ch:
		}
		// Apply this response and whatever else is already waiting before
		// paying for one Catalog.
		changed, reason := false, ""
		for {
			reason = s.watchBreak(resp, ok, st)
			if reason != "" {
				break
			}
			changed = st.apply(resp.Events) || changed
			select {
			case resp, ok = <-ch:
				continue
			default:
			}
			break
		}
		if changed {
			st.build(ctx, pub.publish)
		}
		if reason != "" {
			return reason
		}
	}
}

// watchBreak returns why a watch response ends the watch, or "" when it
// carries events to apply.
func (s *Store) watchBreak(resp clientv3.WatchResponse, ok bool, st *catalogState) string {
	if !ok {
		return "closed"
	}
	err := resp.Err()
	switch {
	case err == nil:
		return ""
	case errors.Is(err, rpctypes.ErrCompacted):
		s.log.Warn("watch compacted; re-reading", "from_revision", st.rev+1, "compact_revision", resp.CompactRevision)
		return "compacted"
	default:
		s.setLastError(fmt.Errorf("watch: %w", err))
		s.log.Warn("watch broken; re-reading", "error", err)
		return "error"
	}
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

// publisher hands Catalogs to a consumer one at a time, always the latest.
type publisher struct {
	mu     sync.Mutex
	latest *tenants.Catalog
	kick   chan struct{}
}

func newPublisher() *publisher { return &publisher{kick: make(chan struct{}, 1)} }

func (p *publisher) publish(c *tenants.Catalog) {
	p.mu.Lock()
	p.latest = c
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default: // a kick is pending; the consumer will take the latest
	}
}

func (p *publisher) run(ctx context.Context, fn func(*tenants.Catalog)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		p.mu.Lock()
		c := p.latest
		p.latest = nil
		p.mu.Unlock()
		if c != nil {
			fn(c)
		}
	}
}
