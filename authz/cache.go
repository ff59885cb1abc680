package authz

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultDecisionCacheSize is used when Options.DecisionCacheSize is 0.
	DefaultDecisionCacheSize = 10000
	// maxEntryTTL bounds entries whose credential has no expiry (API keys
	// without expiresAt); catalog changes invalidate them sooner anyway.
	maxEntryTTL = 10 * time.Minute
	cacheShards = 16
)

// cacheKey identifies one verification: the credential's digest (never the
// credential itself), the route it was presented on and the index
// generation, so any catalog change makes every older entry unreachable.
type cacheKey struct {
	digest [sha256.Size]byte
	tenant string
	route  string
	gen    uint64
}

// cacheEntry remembers a verified credential and the x-tenant-context
// minted for it. Only the verification is cached: every request still
// runs the per-request rules (x-tenant-id, tenant state, roles, features,
// body) against the current catalog.
type cacheEntry struct {
	p       *principal
	expires time.Time
	ctx     atomic.Pointer[mintedContext]
}

type mintedContext struct {
	token string
	exp   time.Time
}

// decisionCache is a sharded LRU with a fixed capacity.
type decisionCache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

type cacheShard struct {
	mu  sync.Mutex
	m   map[cacheKey]*list.Element
	lru list.List // front: most recently used; values are *lruItem
}

type lruItem struct {
	key   cacheKey
	entry *cacheEntry
}

// newDecisionCache returns nil (no caching) for size < 0.
func newDecisionCache(size int) *decisionCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultDecisionCacheSize
	}
	c := &decisionCache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*list.Element)
	}
	return c
}

func (c *decisionCache) shard(k *cacheKey) *cacheShard {
	return &c.shards[k.digest[0]%cacheShards]
}

// get returns a live entry or nil.
func (c *decisionCache) get(k cacheKey, now time.Time) *cacheEntry {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.m[k]
	if !ok {
		return nil
	}
	it := el.Value.(*lruItem)
	if !now.Before(it.entry.expires) {
		s.lru.Remove(el)
		delete(s.m, k)
		return nil
	}
	s.lru.MoveToFront(el)
	return it.entry
}

// put stores e, evicting the least recently used entry of the shard when full.
func (c *decisionCache) put(k cacheKey, e *cacheEntry) {
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[k]; ok {
		el.Value.(*lruItem).entry = e
		s.lru.MoveToFront(el)
		return
	}
	if s.lru.Len() >= c.perShard {
		if old := s.lru.Back(); old != nil {
			s.lru.Remove(old)
			delete(s.m, old.Value.(*lruItem).key)
		}
	}
	s.m[k] = s.lru.PushFront(&lruItem{key: k, entry: e})
}

// purge drops everything (a new catalog makes every entry unreachable;
// this only returns the memory sooner).
func (c *decisionCache) purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.lru.Init()
		s.mu.Unlock()
	}
}

// len counts entries (tests).
func (c *decisionCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
