package xds

import (
	"fmt"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// changeSet is what one sync pushes, per type: the resources to upsert,
// the names to delete, and the tenants whose resources of that type
// changed (the acceptance waits for their ACKs, ack.go).
type changeSet struct {
	upserts map[resourcev3.Type]map[string]types.Resource
	deletes map[resourcev3.Type][]string
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

// upsert pushes r as name; tenant is its owner ("" for a shared resource).
func (c *changeSet) upsert(typ resourcev3.Type, name string, r types.Resource, tenant string) {
	if c.upserts[typ] == nil {
		c.upserts[typ] = map[string]types.Resource{}
	}
	c.upserts[typ][name] = r
	if tenant == "" {
		return
	}
	if c.tenants[typ] == nil {
		c.tenants[typ] = map[string]bool{}
	}
	c.tenants[typ][tenant] = true
}

// deleteMissing deletes what pub holds and next does not.
func (c *changeSet) deleteMissing(typ resourcev3.Type, pub, next map[string]types.Resource) {
	for name := range pub {
		if _, ok := next[name]; !ok {
			c.deletes[typ] = append(c.deletes[typ], name)
		}
	}
	slices.Sort(c.deletes[typ])
}

// diffOwn pushes the change of one tenant's resources of a type from old
// to next, compared with what pub holds by identity (newTenantState kept
// the unchanged resources): what is not pub's is upserted, what old had
// and next has not is deleted.
func (c *changeSet) diffOwn(typ resourcev3.Type, tenant string, pub map[string]types.Resource, old, next []types.Resource) {
	for _, r := range next {
		if name := resourceName(r); pub[name] != r {
			c.upsert(typ, name, r, tenant)
		}
	}
	for _, o := range old {
		name := resourceName(o)
		if !slices.ContainsFunc(next, func(r types.Resource) bool { return resourceName(r) == name }) {
			c.deletes[typ] = append(c.deletes[typ], name)
		}
	}
	slices.Sort(c.deletes[typ])
}

// diffByValue pushes list as the whole set of a type, compared with pub
// by value: an equal resource keeps pub's (nothing pushed), a new or
// changed one must pass check (nil: none) and is upserted for tenant. It
// returns the next published set.
func (c *changeSet) diffByValue(typ resourcev3.Type, tenant string, pub map[string]types.Resource, list []types.Resource, check func(types.Resource) error) (map[string]types.Resource, error) {
	next := make(map[string]types.Resource, len(list))
	for _, r := range list {
		name := resourceName(r)
		if prev, ok := pub[name]; ok && proto.Equal(prev, r) {
			next[name] = prev
			continue
		}
		if check != nil {
			if err := check(r); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		next[name] = r
		c.upsert(typ, name, r, tenant)
	}
	c.deleteMissing(typ, pub, next)
	return next, nil
}

// applyTo applies the set to published maps of the resourceTypes (the
// RateLimitConfig is kept apart: group.rateLimit).
func (c *changeSet) applyTo(published map[resourcev3.Type]map[string]types.Resource) {
	for typ, up := range c.upserts {
		pub := published[typ]
		if pub == nil {
			continue
		}
		for name, r := range up {
			pub[name] = r
		}
	}
	for typ, names := range c.deletes {
		for _, name := range names {
			delete(published[typ], name)
		}
	}
}
