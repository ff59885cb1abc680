package xds

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// resourceTypes are the types a group serves, in make-before-break order:
// a cluster exists before a route points at it. VirtualHost is VHDS: the
// edge tenants' virtual hosts of edge-routes, one resource per tenant.
var resourceTypes = []resourcev3.Type{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.ListenerType,
	resourcev3.RouteType,
	resourcev3.VirtualHostType,
}

// groupCache holds the caches of one group of nodes that receive
// identical configuration (all edges; all proxyless gRPC clients; the
// sidecars of one tenant service): per resource type a deltaCache for
// delta watches (cost per change proportional to the change) and a
// LinearCache for SotW watches, holding the same resources. Both update
// single resources, so a change to one tenant re-marshals only that
// tenant's resources, not the fleet's.
type groupCache struct {
	byType map[resourcev3.Type]*cachev3.LinearCache
	delta  map[resourcev3.Type]*deltaCache
}

func newGroupCache(versionPrefix string) *groupCache {
	g := &groupCache{byType: map[resourcev3.Type]*cachev3.LinearCache{}, delta: map[resourcev3.Type]*deltaCache{}}
	for _, t := range resourceTypes {
		g.byType[t] = cachev3.NewLinearCache(t, cachev3.WithVersionPrefix(versionPrefix))
		g.delta[t] = newDeltaCache(t, versionPrefix)
	}
	return g
}

// update applies one type's changes to both of its caches.
func (g *groupCache) update(typ resourcev3.Type, upserts map[string]types.Resource, deletes []string) error {
	if len(upserts) == 0 && len(deletes) == 0 {
		return nil
	}
	if err := g.delta[typ].UpdateResources(upserts, deletes); err != nil {
		return err
	}
	return g.byType[typ].UpdateResources(upserts, deletes)
}

// errNoGroup is returned for a watch whose node has no group yet; it
// cannot happen after the stream's first request registered the node.
var errNoGroup = errors.New("xds: no configuration group for node")

// muxCache routes every watch to the group of the requesting node, and
// RateLimitConfig watches to one shared cache whatever the node (the
// ratelimit service identifies itself with a bare node id).
type muxCache struct {
	mu        sync.RWMutex
	groups    map[string]*groupCache
	rateLimit *cachev3.LinearCache
	classify  func(nodeID string, meta map[string]any) string
}

var _ cachev3.Cache = (*muxCache)(nil)

func (m *muxCache) lookup(typeURL string, groupKey string) (*groupCache, error) {
	m.mu.RLock()
	g, ok := m.groups[groupKey]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", errNoGroup, groupKey)
	}
	if _, ok := g.byType[typeURL]; !ok {
		return nil, fmt.Errorf("xds: resource type %q is not served", typeURL)
	}
	return g, nil
}

func (m *muxCache) setGroup(key string, g *groupCache) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g == nil {
		delete(m.groups, key)
		return
	}
	m.groups[key] = g
}

// CreateWatch implements cachev3.ConfigWatcher.
func (m *muxCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	if req.GetTypeUrl() == RateLimitConfigType {
		return m.rateLimit.CreateWatch(req, sub, out)
	}
	g, err := m.lookup(req.GetTypeUrl(), groupKeyOf(req.GetNode()))
	if err != nil {
		return nil, err
	}
	return g.byType[req.GetTypeUrl()].CreateWatch(req, vhdsSubscription(req.GetTypeUrl(), sub), out)
}

// CreateDeltaWatch implements cachev3.ConfigWatcher.
func (m *muxCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() == RateLimitConfigType {
		return m.rateLimit.CreateDeltaWatch(req, sub, out)
	}
	g, err := m.lookup(req.GetTypeUrl(), groupKeyOf(req.GetNode()))
	if err != nil {
		return nil, err
	}
	return g.delta[req.GetTypeUrl()].CreateDeltaWatch(req, vhdsSubscription(req.GetTypeUrl(), sub), out)
}

// vhdsSubscription adapts a VHDS subscription to the LinearCache. Envoy
// watches VirtualHost resources by the name of their route configuration,
// as a namespace (source/common/router/vhds.cc: use_namespace_matching,
// start({route config name})): it wants every "edge-routes/<id>". It does
// not send that name: for a namespace watch its delta mux subscribes no
// names (new_grpc_mux_impl.cc, updateWatch), a wildcard request. Other
// clients may name "edge-routes". Either way the subscription is served
// as the wildcard: a group's VirtualHost cache holds nothing but
// edge-routes' virtual hosts. On-demand requests for "edge-routes/<host>"
// never come: the edge config has no on_demand filter, every tenant's
// virtual host is pushed. xds/vhds_test.go checks Envoy's form.
func vhdsSubscription(typeURL string, sub cachev3.Subscription) cachev3.Subscription {
	if typeURL != resourcev3.VirtualHostType {
		return sub
	}
	return namespaceSubscription{sub}
}

type namespaceSubscription struct{ cachev3.Subscription }

func (namespaceSubscription) IsWildcard() bool { return true }

// SubscribedResources is empty: the namespace names no resource itself.
func (namespaceSubscription) SubscribedResources() map[string]struct{} { return nil }

// Fetch implements cachev3.ConfigFetcher; REST fetches are not served.
func (m *muxCache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("xds: fetch (REST xDS) is not supported; use ADS")
}

// update applies one type's changes to a LinearCache: upserts and deletes
// in one version.
func update(c *cachev3.LinearCache, upserts map[string]types.Resource, deletes []string) error {
	if len(upserts) == 0 && len(deletes) == 0 {
		return nil
	}
	return c.UpdateResources(upserts, deletes)
}
