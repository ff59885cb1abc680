package xds

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// deltaCache serves delta xDS watches for one resource type of one group
// at a cost proportional to what changed, not to what a stream subscribes
// to. go-control-plane v0.14's LinearCache compares a watch's whole
// subscription against the cache on every response — twice per change
// (the notification, then the ACK's new watch): at 20,000 EDS resources
// that was most of serve's CPU per change, and it multiplies by the number
// of streams (docs/benchmarks.md).
//
// How: every update gets a sequence number and is logged by name. The
// returned-resources map a stream's subscription carries is one this cache
// made for that stream, updated in place, with the sequence it was last
// brought up to date at under seqKey. A new watch then looks only at the
// names changed since that sequence, plus the names its request
// (un)subscribed; a notification looks only at the names it changed. A
// stream whose map this cache did not make (its first request, or
// initial_resource_versions after a reconnect), or whose sequence left the
// log, gets one full comparison.
//
// Versions are LinearCache's (a hash of the deterministic marshaling), so
// clients that reconnect with initial_resource_versions are not resent
// what they hold. SotW watches stay on the LinearCache beside it.
type deltaCache struct {
	typeURL string
	prefix  string
	id      string // this cache among all of the process's (see mark)

	mu        sync.Mutex
	seq       uint64
	resources map[string]*deltaEntry
	log       []logged // ascending seq; trimmed to maxLog entries
	complete  uint64   // every update from this seq on is wholly in log
	maxLog    int
	watches   map[uint64]*deltaWatch
	nextWatch uint64
}

// seqKey is the returned-resources entry holding "<cache id>:<seq>", the
// cache and sequence the map is current at. No resource is named with a
// NUL, and the server never sends this map to the client.
const seqKey = "\x00tenantmesh-seq"

// deltaCaches numbers the caches, so a map made by a cache that was
// replaced (a sidecar group removed and added again) is never taken for
// the new cache's.
var deltaCaches atomic.Uint64

// defaultMaxLog bounds the change log (it holds maxLog to 2×maxLog
// names); a stream further behind gets a full comparison instead.
const defaultMaxLog = 1 << 16

type deltaEntry struct {
	version string
	value   []byte // marshaled once, sent to every stream
}

type logged struct {
	seq  uint64
	name string
}

type deltaWatch struct {
	req *cachev3.DeltaRequest
	sub cachev3.Subscription
	out chan cachev3.DeltaResponse
	// returned is this cache's map of what the stream holds: the
	// subscription's own when it is ours, else the one a full comparison
	// made (the server adopts it with the watch's response).
	returned map[string]string
}

func newDeltaCache(typeURL, versionPrefix string) *deltaCache {
	return &deltaCache{
		typeURL:   typeURL,
		prefix:    versionPrefix,
		id:        strconv.FormatUint(deltaCaches.Add(1), 10) + ":",
		resources: map[string]*deltaEntry{},
		complete:  1,
		maxLog:    defaultMaxLog,
		watches:   map[uint64]*deltaWatch{},
	}
}

// UpdateResources upserts and deletes in one step and notifies the watches
// the changed names concern. A resource that does not marshal is an error
// and nothing is applied.
func (c *deltaCache) UpdateResources(upserts map[string]types.Resource, deletes []string) error {
	entries := make(map[string]*deltaEntry, len(upserts))
	for name, r := range upserts {
		b, err := cachev3.MarshalResource(r)
		if err != nil {
			return fmt.Errorf("marshal %s %q: %w", c.typeURL, name, err)
		}
		entries[name] = &deltaEntry{version: cachev3.HashResource(b), value: b}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	changed := make([]string, 0, len(entries)+len(deletes))
	for name, e := range entries {
		c.resources[name] = e
		changed = append(changed, name)
	}
	for _, name := range deletes {
		delete(c.resources, name)
		changed = append(changed, name)
	}
	for _, name := range changed {
		c.log = append(c.log, logged{c.seq, name})
	}
	if len(c.log) > 2*c.maxLog {
		// Cut back to maxLog in one copy per maxLog names, not per update.
		// The cut may split an update's names: that update is no longer
		// wholly logged.
		over := len(c.log) - c.maxLog
		c.complete = c.log[over].seq
		if c.log[over-1].seq == c.complete {
			c.complete++
		}
		c.log = append(c.log[:0:0], c.log[over:]...)
	}
	for id, w := range c.watches {
		if resp := c.respond(w, changed, false); resp != nil {
			w.out <- resp // buffered per type by the server: one response per watch
			delete(c.watches, id)
		}
	}
	return nil
}

// CreateDeltaWatch implements the delta half of cachev3.ConfigWatcher.
func (c *deltaCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("xds: delta watch for %s on the %s cache", req.GetTypeUrl(), c.typeURL)
	}
	// Envoy expects an answer, even an empty one, to conclude a wildcard
	// subscription's initialization.
	replyEmpty := sub.IsWildcard() && req.GetResponseNonce() == ""
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &deltaWatch{req: req, sub: sub, out: out}
	candidates, ok := c.since(sub.ReturnedResources())
	// Subscribing to or leaving the wildcard changes what the stream wants
	// wholesale.
	ok = ok && !slices.Contains(req.GetResourceNamesSubscribe(), "*") && !slices.Contains(req.GetResourceNamesUnsubscribe(), "*")
	var resp *deltaResponse
	if ok {
		w.returned = sub.ReturnedResources()
		candidates = append(candidates, req.GetResourceNamesSubscribe()...)
		candidates = append(candidates, req.GetResourceNamesUnsubscribe()...)
		resp = c.respond(w, candidates, replyEmpty)
	} else {
		resp = c.respondFull(w, replyEmpty)
	}
	if resp != nil {
		out <- resp
		return nil, nil
	}
	c.nextWatch++
	id := c.nextWatch
	c.watches[id] = w
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.watches, id)
	}, nil
}

// since is the names changed after the sequence the map is current at;
// false when the map is not one of ours or is older than the log.
func (c *deltaCache) since(returned map[string]string) ([]string, bool) {
	s, ok := strings.CutPrefix(returned[seqKey], c.id)
	if !ok {
		return nil, false // the server's map, or another cache's
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq > c.seq || seq+1 < c.complete {
		return nil, false
	}
	if seq == c.seq {
		return nil, true
	}
	i := sort.Search(len(c.log), func(i int) bool { return c.log[i].seq > seq })
	names := make([]string, 0, len(c.log)-i)
	for _, l := range c.log[i:] {
		names = append(names, l.name)
	}
	return names, true
}

// respond compares the candidate names with what the stream holds and
// brings w.returned up to date in place; nil when nothing is to be sent.
// Caller holds c.mu.
func (c *deltaCache) respond(w *deltaWatch, candidates []string, replyEmpty bool) *deltaResponse {
	returned := w.returned
	resp := &deltaResponse{req: w.req, version: c.version(), returned: returned}
	seen := make(map[string]struct{}, len(candidates))
	for _, name := range candidates {
		if _, dup := seen[name]; dup {
			continue
		}
		seen[name] = struct{}{}
		c.compare(w.sub, name, returned, resp)
	}
	returned[seqKey] = c.mark()
	return resp.orNil(replyEmpty)
}

// respondFull compares everything the stream may hold or want, into a
// new w.returned of this cache's own (the subscription's map is the
// server's, not to be altered). Caller holds c.mu.
func (c *deltaCache) respondFull(w *deltaWatch, replyEmpty bool) *deltaResponse {
	known := w.sub.ReturnedResources()
	returned := make(map[string]string, len(known)+1)
	for name, v := range known {
		if name != seqKey {
			returned[name] = v
		}
	}
	w.returned = returned
	resp := &deltaResponse{req: w.req, version: c.version(), returned: returned}
	if w.sub.IsWildcard() {
		for name := range c.resources {
			c.compare(w.sub, name, returned, resp)
		}
	}
	for name := range w.sub.SubscribedResources() {
		c.compare(w.sub, name, returned, resp)
	}
	for name := range known {
		if name != seqKey {
			c.compare(w.sub, name, returned, resp)
		}
	}
	returned[seqKey] = c.mark()
	return resp.orNil(replyEmpty)
}

// compare decides one name for one stream: send it (new or changed), tell
// the stream it is gone, or forget it (no longer subscribed). Comparing a
// name twice is harmless: the first comparison updated returned.
func (c *deltaCache) compare(sub cachev3.Subscription, name string, returned map[string]string, resp *deltaResponse) {
	if name == seqKey || name == "*" {
		return
	}
	held, known := returned[name]
	if !interested(sub, name) {
		delete(returned, name)
		return
	}
	e, exists := c.resources[name]
	switch {
	case !exists && known:
		delete(returned, name)
		resp.removed = append(resp.removed, name)
	case exists && (!known || held != e.version):
		returned[name] = e.version
		resp.resources = append(resp.resources, &discovery.Resource{
			Name:     name,
			Version:  e.version,
			Resource: &anypb.Any{TypeUrl: c.typeURL, Value: e.value},
		})
	}
}

func interested(sub cachev3.Subscription, name string) bool {
	if sub.IsWildcard() {
		return true
	}
	_, ok := sub.SubscribedResources()[name]
	return ok
}

// mark is the seqKey value for a map now current.
func (c *deltaCache) mark() string { return c.id + strconv.FormatUint(c.seq, 10) }

func (c *deltaCache) version() string { return c.prefix + strconv.FormatUint(c.seq, 10) }

// deltaResponse is a cachev3.DeltaResponse of resources marshaled once in
// the cache. returned is the stream's map, already brought up to date.
type deltaResponse struct {
	req       *cachev3.DeltaRequest
	version   string
	resources []*discovery.Resource
	removed   []string
	returned  map[string]string

	once sync.Once
	msg  *discovery.DeltaDiscoveryResponse
}

var _ cachev3.DeltaResponse = (*deltaResponse)(nil)

func (r *deltaResponse) orNil(replyEmpty bool) *deltaResponse {
	if len(r.resources) == 0 && len(r.removed) == 0 && !replyEmpty {
		return nil
	}
	return r
}

// GetDeltaDiscoveryResponse builds the message once; the server stamps the
// nonce on it.
func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	r.once.Do(func() {
		r.msg = &discovery.DeltaDiscoveryResponse{
			TypeUrl:           r.req.GetTypeUrl(),
			SystemVersionInfo: r.version,
			Resources:         r.resources,
			RemovedResources:  r.removed,
		}
	})
	return r.msg, nil
}

func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                 { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                        { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string              { return r.returned }
func (r *deltaResponse) GetReturnedResources() map[string]string           { return r.returned }
func (r *deltaResponse) GetContext() context.Context                       { return context.Background() }
