package xds

import (
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// diffTenants is the change when no shared aggregate changed: only the
// changed tenants' own resources (endpoints, clusters, virtual hosts) are
// compared and nothing else is scanned. This is the common case, and the
// one that must stay fast with thousands of tenants.
func (g *group) diffTenants(next *pending) {
	for id, s := range next.tenants {
		old := g.tenants[id]
		// A tenant that joins or leaves is a rebuild, never this path.
		if s == nil || old == nil {
			continue
		}
		if err := g.excluded[id]; err != nil {
			// Its host claims did not change: still left out, and its
			// new version is reported as such.
			next.errs[id] = err
			continue
		}
		for i, typ := range resourceTypes {
			next.cs.diffOwn(typ, id, g.published[typ], old.res[i], s.res[i])
		}
	}
}

// assemble rebuilds the shared aggregates from every tenant's next part
// and diffs the whole set against what is published. The tenants' own
// resources are compared by identity (newTenantState kept the unchanged
// ones; TranslateTenant validated them); the shared ones (listener,
// edge-routes, service and alias clusters, the RateLimitConfig) are few,
// compared by value and validated when they changed.
func (g *group) assemble(next *pending) error {
	parts := next.parts(g)
	res, conflicts, err := translate.Assemble(next.cat, g.node, parts)
	if err != nil {
		return fmt.Errorf("assemble %s: %w", g.key, err)
	}
	next.excluded = conflicts
	for id, cerr := range conflicts {
		next.errs[id] = cerr
	}
	built := res.ByType()
	out := make([]map[string]types.Resource, len(resourceTypes))
	for i, typ := range resourceTypes {
		out[i] = make(map[string]types.Resource, len(built[typ]))
	}
	for id := range parts {
		if next.excluded[id] != nil {
			continue
		}
		s := next.state(g, id)
		for i, typ := range resourceTypes {
			for _, r := range s.res[i] {
				name := resourceName(r)
				out[i][name] = r
				if g.published[typ][name] != r {
					next.cs.upsert(typ, name, r, id)
				}
			}
		}
	}
	next.published = make(map[resourcev3.Type]map[string]types.Resource, len(resourceTypes))
	for i, typ := range resourceTypes {
		if err := g.diffShared(next, typ, built[typ], out[i]); err != nil {
			return err
		}
		next.cs.deleteMissing(typ, g.published[typ], out[i])
		next.published[typ] = out[i]
	}
	next.rateLimit = g.rateLimit
	if g.node.Role == translate.RoleEdge {
		next.rateLimit, err = next.cs.diffByValue(RateLimitConfigType, "", g.rateLimit, built[RateLimitConfigType], validate)
		if err != nil {
			return fmt.Errorf("RateLimitConfig %w", err)
		}
	}
	return nil
}

// diffShared adds to out (holding the tenants' own resources of typ) the
// shared ones of Assemble's list: an unchanged one stays the published
// object, a changed one is validated and upserted.
func (g *group) diffShared(next *pending, typ resourcev3.Type, list []types.Resource, out map[string]types.Resource) error {
	pub := g.published[typ]
	for _, r := range list {
		name := resourceName(r)
		if _, own := out[name]; own {
			continue
		}
		if prev, ok := pub[name]; ok && proto.Equal(prev, r) {
			out[name] = prev
			continue
		}
		if err := validate(r); err != nil {
			return fmt.Errorf("%s %s: %w", typ, name, err)
		}
		out[name] = r
		next.cs.upsert(typ, name, r, "")
	}
	return nil
}
