package xds

import (
	"errors"
	"fmt"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// group is the incremental translation state of one group of nodes. It
// remembers, per tenant, which *tenants.Tenant its resources were built
// from; a Catalog shares unchanged tenants by pointer, so only changed
// tenants are translated again, and only their resources are pushed.
type group struct {
	key   string
	node  translate.Node
	cache *groupCache

	mesh  *tenants.MeshConfig
	src   map[string]*tenants.Tenant // the tenant object parts[id] was built from
	parts map[string]*translate.TenantResources
	// shared are the Catalog's shared services the edge routes were built
	// from (compared by pointer: the store reuses unchanged ones).
	shared []*tenants.SharedService

	// published is what the caches hold, by type and name.
	published map[resourcev3.Type]map[string]types.Resource
	// rateLimit is the published RateLimitConfig (edge group only).
	rateLimit map[string]types.Resource
	// excluded are tenants Assemble left out (a host another tenant owns).
	excluded map[string]bool
}

func newGroup(key string, node translate.Node, versionPrefix string) *group {
	g := &group{
		key:       key,
		node:      node,
		cache:     newGroupCache(versionPrefix),
		src:       map[string]*tenants.Tenant{},
		parts:     map[string]*translate.TenantResources{},
		published: map[resourcev3.Type]map[string]types.Resource{},
		rateLimit: map[string]types.Resource{},
	}
	for _, t := range resourceTypes {
		g.published[t] = map[string]types.Resource{}
	}
	return g
}

// changeSet is what one sync changes, per type.
type changeSet struct {
	upserts map[resourcev3.Type]map[string]types.Resource
	deletes map[resourcev3.Type][]string
	// tenants lists, per type, the tenants whose resources of that type changed.
	tenants map[resourcev3.Type]map[string]bool
}

func newChangeSet() *changeSet {
	return &changeSet{
		upserts: map[resourcev3.Type]map[string]types.Resource{},
		deletes: map[resourcev3.Type][]string{},
		tenants: map[resourcev3.Type]map[string]bool{},
	}
}

func (c *changeSet) empty() bool {
	for _, m := range c.upserts {
		if len(m) > 0 {
			return false
		}
	}
	for _, d := range c.deletes {
		if len(d) > 0 {
			return false
		}
	}
	return true
}

// effective returns the tenant object to translate for id: normally the
// Catalog's, but the last accepted version while the Catalog's version is
// the one a proxy rejected (nil: leave the tenant out).
type effectiveFunc func(id string, inCatalog *tenants.Tenant) *tenants.Tenant

// sync brings the group to cat. It returns the changes it pushed and the
// tenants whose translation failed (they keep their previous resources).
func (g *group) sync(cat *tenants.Catalog, effective effectiveFunc) (*changeSet, translate.TenantErrors, error) {
	if g.node.Role == translate.RoleSidecar || g.node.Role == translate.RoleGRPCServer {
		return g.syncSidecar(cat, effective)
	}
	meshChanged := g.mesh != cat.Mesh()
	errs := translate.TenantErrors{}
	// Shared services are mounted in the edge routes: any change to them
	// is an aggregate change (compared by pointer; the store reuses
	// unchanged objects).
	aggregateDirty := meshChanged || !slices.Equal(g.shared, cat.SharedServices())
	// g.parts and g.src are updated in place (copying two maps of every
	// tenant per change was most of a change's cost at 10k tenants); undo
	// restores them if the change cannot be published.
	undo := map[string]undoEntry{}
	set := func(id string, p *translate.TenantResources, t *tenants.Tenant) {
		if _, ok := undo[id]; !ok {
			old, had := g.parts[id]
			undo[id] = undoEntry{old, g.src[id], had}
		}
		if p == nil {
			delete(g.parts, id)
			delete(g.src, id)
			return
		}
		g.parts[id], g.src[id] = p, t
	}
	touched := map[string]bool{}
	kept := 0

	for _, id := range cat.TenantIDs() {
		inCat, _ := cat.Tenant(id)
		t := effective(id, inCat)
		old, hadOld := g.parts[id]
		if t == nil {
			if hadOld {
				set(id, nil, nil)
				aggregateDirty = true
			}
			continue
		}
		if !meshChanged && hadOld && g.src[id] == t {
			kept++
			continue
		}
		// TranslateTenant validates (ValidateAll) everything it returns.
		p, err := translate.TranslateTenant(cat.Mesh(), t, g.node.Role)
		if err != nil {
			errs[id] = err
			if !hadOld {
				continue
			}
			// Keep serving the last good version; under a new mesh it is
			// translated again (its host keys carry the edge port), or the
			// old translation is kept if even that fails.
			if !meshChanged {
				kept++
				continue
			}
			if p, err = translate.TranslateTenant(cat.Mesh(), g.src[id], g.node.Role); err != nil {
				kept++
				continue
			}
			t = g.src[id]
		}
		if hadOld {
			if !reuseEqual(p, old) {
				aggregateDirty = true
			}
			// Entitlements to shared services live in the edge routes but
			// not in the tenant's own part: a change of features or status
			// must rebuild them too.
			if g.node.Role == translate.RoleEdge && len(cat.SharedServices()) > 0 && !sameEntitlementInputs(g.src[id], t) {
				aggregateDirty = true
			}
		} else {
			aggregateDirty = true
		}
		set(id, p, t)
		touched[id] = true
		kept++
	}
	if len(g.parts) > kept { // tenants left the catalog
		for id := range g.parts {
			if _, ok := cat.Tenant(id); !ok {
				set(id, nil, nil)
			}
		}
		aggregateDirty = true
	}
	if !aggregateDirty {
		// Only tenants' own resources changed (endpoints, clusters): no
		// shared resource is rebuilt, nothing is scanned but the changed
		// tenants. This is the common case and the one that must stay
		// fast with thousands of tenants.
		cs := newChangeSet()
		for id := range touched {
			if !g.excluded[id] {
				g.diffTenant(cs, id, undo[id].part, g.parts[id])
			}
		}
		return cs, errs, nil
	}
	parts := g.parts
	fail := func(err error) (*changeSet, translate.TenantErrors, error) {
		for id, u := range undo {
			if u.had {
				g.parts[id], g.src[id] = u.part, u.src
			} else {
				delete(g.parts, id)
				delete(g.src, id)
			}
		}
		return nil, errs, err
	}

	res, conflicts, err := translate.Assemble(cat, g.node, parts)
	if err != nil {
		return fail(fmt.Errorf("assemble %s: %w", g.key, err))
	}
	g.excluded = map[string]bool{}
	for id, cerr := range conflicts {
		errs[id] = cerr
		g.excluded[id] = true
	}
	owner := ownerIndex(parts)
	cs := newChangeSet()
	byType := map[resourcev3.Type][]types.Resource{
		resourcev3.ClusterType:     res.Clusters,
		resourcev3.EndpointType:    res.Endpoints,
		resourcev3.ListenerType:    res.Listeners,
		resourcev3.RouteType:       res.Routes,
		resourcev3.VirtualHostType: res.VirtualHosts,
	}
	published := map[resourcev3.Type]map[string]types.Resource{}
	for _, typ := range resourceTypes {
		next, err := g.diff(cs, typ, byType[typ], owner)
		if err != nil {
			return fail(err)
		}
		published[typ] = next
	}
	rateLimit := g.rateLimit
	if g.node.Role == translate.RoleEdge {
		if rateLimit, err = g.diffRateLimit(cs, res.RateLimitConfigs); err != nil {
			return fail(err)
		}
	}
	// Nothing failed: only now does the group's view of what is published move.
	g.published, g.rateLimit = published, rateLimit
	g.mesh, g.shared = cat.Mesh(), cat.SharedServices()
	return cs, errs, nil
}

// undoEntry is a tenant's state in a group before a sync changed it.
type undoEntry struct {
	part *translate.TenantResources
	src  *tenants.Tenant
	had  bool
}

// sameEntitlementInputs reports whether two versions of a tenant are
// entitled to the same shared services with the same alias breakers.
func sameEntitlementInputs(a, b *tenants.Tenant) bool {
	return a != nil && b != nil && a.Active() == b.Active() &&
		slices.Equal(a.Spec.Features, b.Spec.Features) &&
		a.Spec.MaxConcurrentRequests == b.Spec.MaxConcurrentRequests
}

// syncSidecar brings a sidecar (or grpc-server) group to cat. Its set depends on
// one tenant and the shared services and is a few resources, so it is
// translated whole and diffed by value; only what changed is pushed. A
// translation error keeps the last good configuration and is reported
// against the sidecar's tenant; bad node metadata is an error of the group.
func (g *group) syncSidecar(cat *tenants.Catalog, effective effectiveFunc) (*changeSet, translate.TenantErrors, error) {
	// Nothing but the node's tenant, the shared services and the mesh
	// feed a sidecar: a change to any other tenant costs a comparison, not
	// a translation (with thousands of sidecar groups this is the
	// difference between microseconds and seconds per change).
	t, known := cat.Tenant(g.node.Tenant)
	if known {
		// A NACK pin holds for the tenant's sidecars too (nil: no version
		// accepted yet, translated as a tenant the Catalog does not hold).
		t = effective(g.node.Tenant, t)
	}
	prevT, seen := g.src[g.node.Tenant]
	if seen && prevT == t && g.mesh == cat.Mesh() && slices.Equal(g.shared, cat.SharedServices()) {
		return newChangeSet(), nil, nil
	}
	res, err := translate.TranslateTenantNode(cat, g.node, t)
	if errors.Is(err, translate.ErrInvalidNode) {
		return nil, nil, fmt.Errorf("sidecar %s: %w", g.key, err)
	}
	var errs translate.TenantErrors
	if err != nil {
		errs = translate.TenantErrors{g.node.Tenant: err}
		// Keep serving the last good version, translated again: the mesh
		// or the shared services may have changed since.
		if !seen || prevT == t {
			return newChangeSet(), errs, nil
		}
		if res, err = translate.TranslateTenantNode(cat, g.node, prevT); err != nil {
			return newChangeSet(), errs, nil
		}
		t = prevT
	}
	cs := newChangeSet()
	byType := res.ByType()
	for _, typ := range resourceTypes {
		pub := g.published[typ]
		next := make(map[string]types.Resource, len(byType[typ]))
		for _, r := range byType[typ] {
			name := resourceName(r)
			if prev, ok := pub[name]; ok && proto.Equal(prev, r) {
				next[name] = prev
				continue
			}
			next[name] = r
			if cs.upserts[typ] == nil {
				cs.upserts[typ] = map[string]types.Resource{}
			}
			cs.upserts[typ][name] = r
			markTenant(cs, typ, g.node.Tenant)
		}
		for name := range pub {
			if _, ok := next[name]; !ok {
				cs.deletes[typ] = append(cs.deletes[typ], name)
			}
		}
		slices.Sort(cs.deletes[typ])
		g.published[typ] = next
	}
	g.mesh, g.shared = cat.Mesh(), cat.SharedServices()
	g.src = map[string]*tenants.Tenant{g.node.Tenant: t}
	return cs, errs, nil
}

// diff computes the upserts and deletes of one type on the slow path (a
// shared aggregate changed). Per-tenant resources are compared by pointer
// (reuseEqual kept unchanged ones identical; TranslateTenant validated
// them); shared ones (listener, edge-routes, service clusters) are small
// and compared by value, and validated when they changed.
func (g *group) diff(cs *changeSet, typ resourcev3.Type, list []types.Resource, owner map[types.Resource]string) (map[string]types.Resource, error) {
	pub := g.published[typ]
	next := make(map[string]types.Resource, len(list))
	for _, r := range list {
		name := resourceName(r)
		next[name] = r
		prev, had := pub[name]
		_, own := owner[r]
		switch {
		case had && prev == r:
			continue
		case !own && had && proto.Equal(prev, r):
			next[name] = prev
			continue
		case !own:
			if err := validate(r); err != nil {
				return nil, fmt.Errorf("%s %s: %w", typ, name, err)
			}
		}
		if cs.upserts[typ] == nil {
			cs.upserts[typ] = map[string]types.Resource{}
		}
		cs.upserts[typ][name] = r
		markTenant(cs, typ, owner[r])
	}
	for name := range pub {
		if _, ok := next[name]; !ok {
			cs.deletes[typ] = append(cs.deletes[typ], name)
		}
	}
	slices.Sort(cs.deletes[typ])
	return next, nil
}

func (g *group) diffRateLimit(cs *changeSet, list []types.Resource) (map[string]types.Resource, error) {
	next := map[string]types.Resource{}
	for _, r := range list {
		name := resourceName(r)
		if prev, ok := g.rateLimit[name]; ok && proto.Equal(prev, r) {
			next[name] = prev
			continue
		}
		if err := validate(r); err != nil {
			return nil, fmt.Errorf("RateLimitConfig %s: %w", name, err)
		}
		next[name] = r
		if cs.upserts[RateLimitConfigType] == nil {
			cs.upserts[RateLimitConfigType] = map[string]types.Resource{}
		}
		cs.upserts[RateLimitConfigType][name] = r
	}
	for name := range g.rateLimit {
		if _, ok := next[name]; !ok {
			cs.deletes[RateLimitConfigType] = append(cs.deletes[RateLimitConfigType], name)
		}
	}
	return next, nil
}

// diffTenant publishes the changes of one tenant's own resources.
func (g *group) diffTenant(cs *changeSet, id string, old, next *translate.TenantResources) {
	type pair struct {
		typ       resourcev3.Type
		old, next []types.Resource
	}
	for _, p := range []pair{
		{resourcev3.ClusterType, asResources(old.Clusters), asResources(next.Clusters)},
		{resourcev3.EndpointType, asResources(old.Endpoints), asResources(next.Endpoints)},
		{resourcev3.ListenerType, asResources(old.Listeners), asResources(next.Listeners)},
		{resourcev3.RouteType, asResources(old.RouteConfigs), asResources(next.RouteConfigs)},
		{resourcev3.VirtualHostType, optional(old.VirtualHost), optional(next.VirtualHost)},
	} {
		pub := g.published[p.typ]
		keep := map[string]bool{}
		for _, r := range p.next {
			name := resourceName(r)
			keep[name] = true
			if pub[name] == r {
				continue
			}
			pub[name] = r
			if cs.upserts[p.typ] == nil {
				cs.upserts[p.typ] = map[string]types.Resource{}
			}
			cs.upserts[p.typ][name] = r
			markTenant(cs, p.typ, id)
		}
		for _, r := range p.old {
			if name := resourceName(r); !keep[name] {
				delete(pub, name)
				cs.deletes[p.typ] = append(cs.deletes[p.typ], name)
			}
		}
	}
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// optional is a resource list of zero or one.
func optional(vh *routev3.VirtualHost) []types.Resource {
	if vh == nil {
		return nil
	}
	return []types.Resource{vh}
}

func markTenant(cs *changeSet, typ resourcev3.Type, id string) {
	if id == "" {
		return
	}
	if cs.tenants[typ] == nil {
		cs.tenants[typ] = map[string]bool{}
	}
	cs.tenants[typ][id] = true
}

// ownerIndex maps every per-tenant resource to its tenant.
func ownerIndex(parts map[string]*translate.TenantResources) map[types.Resource]string {
	owner := map[types.Resource]string{}
	for id, p := range parts {
		for _, c := range p.Clusters {
			owner[c] = id
		}
		for _, e := range p.Endpoints {
			owner[e] = id
		}
		for _, l := range p.Listeners {
			owner[l] = id
		}
		for _, r := range p.RouteConfigs {
			owner[r] = id
		}
		if p.VirtualHost != nil {
			owner[p.VirtualHost] = id
		}
	}
	return owner
}

// reuseEqual replaces every resource of p that equals the one in old by
// old's pointer, so an endpoint-only change does not look like a route
// change to the diff. It reports whether the parts that feed the shared
// aggregates (host claims, shared-service buckets, rate limit config) are
// unchanged.
func reuseEqual(p, old *translate.TenantResources) (aggregatesSame bool) {
	if translate.SameAggregateInputs(p, old) {
		p.LocalRateLimits, p.RateLimit = old.LocalRateLimits, old.RateLimit
		aggregatesSame = true
	}
	if p.VirtualHost != nil && proto.Equal(p.VirtualHost, old.VirtualHost) {
		p.VirtualHost = old.VirtualHost
	}
	p.Clusters = reuseByName(p.Clusters, old.Clusters)
	p.Endpoints = reuseByName(p.Endpoints, old.Endpoints)
	p.Listeners = reuseByName(p.Listeners, old.Listeners)
	p.RouteConfigs = reuseByName(p.RouteConfigs, old.RouteConfigs)
	return aggregatesSame
}

func reuseByName[T interface {
	proto.Message
	comparable
}](next, old []T) []T {
	byName := make(map[string]T, len(old))
	for _, o := range old {
		byName[resourceName(o)] = o
	}
	for i, n := range next {
		if o, ok := byName[resourceName(n)]; ok && proto.Equal(o, n) {
			next[i] = o
		}
	}
	return next
}
