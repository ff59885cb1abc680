package xds

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// group is the incremental translation state of one group of nodes. It
// remembers, per tenant, which *tenants.Tenant its resources were built
// from; a Catalog shares unchanged tenants by pointer, so only changed
// tenants are translated again, and only their resources are pushed.
//
// The files: group_tenants.go plans a sync (which tenants change, the
// pending next state), group_assemble.go turns it into a change set,
// changeset.go is what is pushed, group_sidecar.go the sidecar groups.
type group struct {
	key   string
	node  translate.Node
	cache *groupCache

	// mesh and shared are what the group was last synced with (shared
	// compared by pointer: the store reuses unchanged objects).
	mesh   *tenants.MeshConfig
	shared []*tenants.SharedService

	tenants map[string]*tenantState
	// parts are tenants[id].part as Assemble takes them, kept as a map of
	// their own so that a rebuild clones it rather than building it.
	parts map[string]*translate.TenantResources
	// excluded are the tenants Assemble left out (a host another tenant
	// owns), with the reason.
	excluded map[string]error

	// published is what the caches hold, by type and name.
	published map[resourcev3.Type]map[string]types.Resource
	// rateLimit is the published RateLimitConfig (edge group only).
	rateLimit map[string]types.Resource
}

func newGroup(key string, node translate.Node, versionPrefix string) *group {
	g := &group{
		key:       key,
		node:      node,
		cache:     newGroupCache(versionPrefix),
		tenants:   map[string]*tenantState{},
		parts:     map[string]*translate.TenantResources{},
		published: map[resourcev3.Type]map[string]types.Resource{},
		rateLimit: map[string]types.Resource{},
	}
	for _, t := range resourceTypes {
		g.published[t] = map[string]types.Resource{}
	}
	return g
}

// effective returns the tenant object to translate for id: normally the
// Catalog's, but the last accepted version while the Catalog's version is
// the one a proxy rejected (nil: leave the tenant out).
type effectiveFunc func(id string, inCatalog *tenants.Tenant) *tenants.Tenant

// sync brings the group to cat. It returns the changes to push and the
// tenants whose translation failed (they keep their last good version).
// On an error nothing changed: the group still describes what the caches
// hold.
func (g *group) sync(cat *tenants.Catalog, effective effectiveFunc) (*changeSet, translate.TenantErrors, error) {
	if g.node.Role == translate.RoleSidecar || g.node.Role == translate.RoleGRPCServer {
		return g.syncSidecar(cat, effective)
	}
	next := g.plan(cat, effective)
	if next.rebuild {
		if err := g.assemble(next); err != nil {
			return nil, next.errs, err
		}
	} else {
		g.diffTenants(next)
	}
	g.commit(next)
	return next.cs, next.errs, nil
}

// commit makes next the group's state.
func (g *group) commit(next *pending) {
	for id, s := range next.tenants {
		if s == nil {
			delete(g.tenants, id)
			delete(g.parts, id)
			continue
		}
		g.tenants[id], g.parts[id] = s, s.part
	}
	if next.rebuild {
		g.published, g.rateLimit, g.excluded = next.published, next.rateLimit, next.excluded
	} else {
		next.cs.applyTo(g.published)
	}
	g.mesh, g.shared = next.cat.Mesh(), next.cat.SharedServices()
}
