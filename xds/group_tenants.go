package xds

import (
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// tenantState is what a group holds of one tenant.
type tenantState struct {
	src  *tenants.Tenant            // the tenant object part was translated from
	part *translate.TenantResources // as TranslateTenant returned it, never modified
	// res are part's resources by type, in the order of resourceTypes,
	// with every one that equals the one published before replaced by
	// that one: the diff takes identity for "unchanged".
	res [][]types.Resource
}

// newTenantState is tenant version t translated as part; old (nil: none)
// is the state it replaces.
func newTenantState(t *tenants.Tenant, part *translate.TenantResources, old *tenantState) *tenantState {
	s := &tenantState{src: t, part: part, res: make([][]types.Resource, len(resourceTypes))}
	for i, typ := range resourceTypes {
		s.res[i] = tenantResources(part, typ)
		if old != nil {
			reuseEqual(s.res[i], old.res[i])
		}
	}
	return s
}

// tenantResources is a new list of p's resources of type typ: the one
// place that knows which field of a TenantResources holds which type.
func tenantResources(p *translate.TenantResources, typ resourcev3.Type) []types.Resource {
	switch typ {
	case resourcev3.ClusterType:
		return asResources(p.Clusters)
	case resourcev3.EndpointType:
		return asResources(p.Endpoints)
	case resourcev3.ListenerType:
		return asResources(p.Listeners)
	case resourcev3.RouteType:
		return asResources(p.RouteConfigs)
	case resourcev3.VirtualHostType:
		if p.VirtualHost != nil {
			return []types.Resource{p.VirtualHost}
		}
	}
	return nil
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// reuseEqual replaces every resource of next that equals old's of the
// same name by old's, so an endpoint-only change does not look like a
// route change to the diff. A tenant has a few resources of a type: a
// scan is cheaper than an index.
func reuseEqual(next, old []types.Resource) {
	for i, n := range next {
		name := resourceName(n)
		if j := slices.IndexFunc(old, func(o types.Resource) bool { return resourceName(o) == name }); j >= 0 && proto.Equal(old[j], n) {
			next[i] = old[j]
		}
	}
}

// pending is one sync's next state of a group, computed without touching
// the group and committed whole (group.commit), or dropped when it cannot
// be published.
type pending struct {
	cat *tenants.Catalog
	// tenants are the next states of the tenants that change (nil: the
	// tenant leaves the group's set).
	tenants map[string]*tenantState
	errs    translate.TenantErrors
	// retranslate: every tenant's part is out of date (the mesh or the
	// shared services' routes changed), even where the tenant object did
	// not.
	retranslate bool
	// rebuild: what the shared aggregates are built from changed, so they
	// are assembled again; otherwise only the changed tenants' own
	// resources are diffed.
	rebuild bool
	cs      *changeSet // what is pushed
	// Set when rebuilt: the whole next published set, RateLimitConfig and
	// the tenants Assemble left out.
	published map[resourcev3.Type]map[string]types.Resource
	rateLimit map[string]types.Resource
	excluded  map[string]error
}

// plan computes the next tenant states for cat: the tenants whose version
// to serve (effective) or mesh changed are translated again.
func (g *group) plan(cat *tenants.Catalog, effective effectiveFunc) *pending {
	meshChanged := g.mesh != cat.Mesh()
	// Compared by pointer: the store reuses unchanged objects.
	sharedChanged := !slices.Equal(g.shared, cat.SharedServices())
	next := &pending{cat: cat, tenants: map[string]*tenantState{}, errs: translate.TenantErrors{}, cs: newChangeSet(),
		// A tenant's edge virtual host mounts the shared services it may
		// call (translate.TranslateTenant): every tenant is translated
		// again when what those routes are made of changed, not on an
		// endpoint change.
		retranslate: meshChanged || sharedChanged && g.node.Role == translate.RoleEdge &&
			!translate.SameSharedRoutes(g.shared, cat.SharedServices()),
		// The mesh feeds the edge listener; the shared services' alias
		// clusters and mounts are Assemble's.
		rebuild: meshChanged || sharedChanged,
	}
	held := 0 // catalog tenants the group holds
	for _, id := range cat.TenantIDs() {
		old := g.tenants[id]
		if old != nil {
			held++
		}
		inCat, _ := cat.Tenant(id)
		g.planTenant(next, id, old, effective(id, inCat))
	}
	if held < len(g.tenants) { // some left the catalog
		for id := range g.tenants {
			if _, ok := cat.Tenant(id); !ok {
				next.leave(id)
			}
		}
	}
	return next
}

// planTenant records the next state of tenant id, held as old (nil: not
// held), when t (nil: no version to serve) changes it.
func (g *group) planTenant(next *pending, id string, old *tenantState, t *tenants.Tenant) {
	mesh := next.cat.Mesh()
	switch {
	case t == nil: // pinned, but no version was ever accepted: left out
		if old != nil {
			next.leave(id)
		}
		return
	case old != nil && old.src == t && !next.retranslate:
		return
	}
	// TranslateTenant validates everything it returns.
	shared := next.cat.SharedServices()
	part, err := translate.TranslateTenant(mesh, shared, t, g.node.Role)
	if err != nil {
		next.errs[id] = err
		// Keep serving the last good version. Under a new mesh or shared
		// routes it is translated again (its host keys carry the edge
		// port, its virtual host the mounts); when even that fails its old
		// translation stays.
		if old == nil || !next.retranslate {
			return
		}
		if part, err = translate.TranslateTenant(mesh, shared, old.src, g.node.Role); err != nil {
			return
		}
		t = old.src
	}
	s := newTenantState(t, part, old)
	next.tenants[id] = s
	if old == nil || g.aggregatesChanged(next.cat, old.part, s.part) {
		next.rebuild = true
	}
}

// aggregatesChanged reports whether a tenant's new part changes what the
// shared aggregates are built from: its host claims, local buckets and
// RateLimitConfig descriptor, and at the edge its entitlements to the
// shared services (its alias clusters and mount routes are Assemble's).
func (g *group) aggregatesChanged(cat *tenants.Catalog, old, next *translate.TenantResources) bool {
	if !translate.SameAggregateInputs(old, next) {
		return true
	}
	return g.node.Role == translate.RoleEdge && len(cat.SharedServices()) > 0 && !translate.SameEntitlements(old, next)
}

func (p *pending) leave(id string) {
	p.tenants[id] = nil
	p.rebuild = true
}

// parts are the next parts of every tenant, as Assemble takes them.
func (p *pending) parts(g *group) map[string]*translate.TenantResources {
	parts := maps.Clone(g.parts)
	for id, s := range p.tenants {
		if s == nil {
			delete(parts, id)
		} else {
			parts[id] = s.part
		}
	}
	return parts
}

// state is tenant id's next state.
func (p *pending) state(g *group, id string) *tenantState {
	if s, changed := p.tenants[id]; changed {
		return s
	}
	return g.tenants[id]
}
