package xds

import (
	"errors"
	"fmt"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// syncSidecar brings a sidecar (or grpc-server) group to cat. Its set
// depends on one tenant and the shared services and is a few resources,
// so it is translated whole and diffed by value; only what changed is
// pushed. A translation error keeps the last good version (translated
// again against the current mesh and shared services) and is reported
// against the sidecar's tenant; bad node metadata is an error of the group.
func (g *group) syncSidecar(cat *tenants.Catalog, effective effectiveFunc) (*changeSet, translate.TenantErrors, error) {
	id := g.node.Tenant
	t, known := cat.Tenant(id)
	if known {
		// A NACK pin holds for the tenant's sidecars too (nil: no version
		// accepted yet, translated as a tenant the Catalog does not hold).
		t = effective(id, t)
	}
	// Nothing but the node's tenant, the shared services and the mesh
	// feed a sidecar: a change to any other tenant costs a comparison, not
	// a translation (with thousands of sidecar groups this is the
	// difference between microseconds and seconds per change).
	prev, seen := g.tenants[id]
	if seen && prev.src == t && g.mesh == cat.Mesh() && slices.Equal(g.shared, cat.SharedServices()) {
		return newChangeSet(), nil, nil
	}
	res, err := translate.TranslateTenantNode(cat, g.node, t)
	if errors.Is(err, translate.ErrInvalidNode) {
		return nil, nil, fmt.Errorf("sidecar %s: %w", g.key, err)
	}
	var errs translate.TenantErrors
	if err != nil {
		errs = translate.TenantErrors{id: err}
		if !seen || prev.src == t {
			return newChangeSet(), errs, nil
		}
		if res, err = translate.TranslateTenantNode(cat, g.node, prev.src); err != nil {
			return newChangeSet(), errs, nil
		}
		t = prev.src
	}
	cs := newChangeSet()
	published := make(map[resourcev3.Type]map[string]types.Resource, len(resourceTypes))
	built := res.ByType()
	for _, typ := range resourceTypes {
		// TranslateTenantNode validated the whole set.
		if published[typ], err = cs.diffByValue(typ, id, g.published[typ], built[typ], nil); err != nil {
			return nil, errs, err
		}
	}
	g.published, g.mesh, g.shared = published, cat.Mesh(), cat.SharedServices()
	g.tenants = map[string]*tenantState{id: {src: t}}
	return cs, errs, nil
}
