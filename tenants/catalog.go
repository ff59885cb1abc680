package tenants

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// Catalog is the validated, defaulted, immutable view of everything in the
// store at one etcd revision. A change produces a new Catalog that shares
// the unchanged tenants (same pointers), which is what lets translation
// redo only the tenants that changed. Nothing may mutate a Catalog or any
// object reachable from it.
type Catalog struct {
	revision int64
	mesh     *MeshConfig
	tiers    map[string]*Tier
	tenants  map[string]*Tenant // defaulted
	inputs   map[string]*Tenant // as given, to share defaulted copies
	ids      []string
	hosts    map[string]string
	issuers  map[string][]string // tenant issuers only
	apiKeys  map[string]*APIKey
	rejected map[string]error
	shared   []*SharedService // sorted by name (SharedService kind)

	// serial identifies this Catalog; base is the serial of the Catalog an
	// incremental build started from (0: a full build) and changed the ids
	// it added, replaced or removed. A serial, not a pointer, so a Catalog
	// never keeps its predecessors alive.
	serial  uint64
	base    uint64
	changed []string
}

// catalogs numbers Catalogs (see Catalog.serial).
var catalogs atomic.Uint64

// Input is what a Catalog is built from: decoded and individually
// validated objects (the store drops what does not decode or validate).
type Input struct {
	Revision int64
	Mesh     *MeshConfig // nil: defaults
	Tiers    []*Tier     // override the built-in tiers by name
	Tenants  []*Tenant
	APIKeys  []*APIKey
	// SharedServices are the SharedService objects (any order).
	SharedServices []*SharedService
}

// NewCatalog builds a Catalog. prev, when not nil, lends its defaulted
// tenants for inputs that are the same pointer as before under the same
// tier and mesh, so a one-tenant change costs one tenant of work.
//
// Conflicts between tenants (a host claimed twice, a tier that does not
// exist) cannot be caught by validating one tenant alone; the tenant that
// loses is left out and reported by Rejected, never the other one.
func NewCatalog(in Input, prev *Catalog) *Catalog {
	c := &Catalog{
		serial:   catalogs.Add(1),
		revision: in.Revision,
		mesh:     DefaultedMeshConfig(in.Mesh),
		tiers:    BuiltinTiers(),
		tenants:  make(map[string]*Tenant, len(in.Tenants)),
		inputs:   make(map[string]*Tenant, len(in.Tenants)),
		hosts:    map[string]string{},
		issuers:  map[string][]string{},
		apiKeys:  make(map[string]*APIKey, len(in.APIKeys)),
		rejected: map[string]error{},
	}
	for _, t := range in.Tiers {
		c.tiers[t.Metadata.Name] = t
	}
	reuse := prev != nil && sameMesh(prev.mesh, c.mesh) && sameTierMap(prev.tiers, c.tiers)
	if reuse {
		c.mesh, c.tiers = prev.mesh, prev.tiers
	}
	c.shared = append([]*SharedService(nil), in.SharedServices...)
	sort.Slice(c.shared, func(i, j int) bool { return c.shared[i].Metadata.Name < c.shared[j].Metadata.Name })
	for _, k := range in.APIKeys {
		c.apiKeys[k.ID] = k
	}
	if reuse && c.applyChanges(in.Tenants, prev) {
		return c
	}

	// Older tenants win host conflicts, so a new tenant cannot take over a
	// host that is already serving somebody else.
	// Revisions are parsed once, not in every comparison: this sort runs on
	// every change and dominated it with 10,000 tenants.
	type byRev struct {
		rev int64
		t   *Tenant
	}
	ordered := make([]byRev, len(in.Tenants))
	for i, t := range in.Tenants {
		ordered[i] = byRev{revOf(t), t}
	}
	slices.SortFunc(ordered, func(a, b byRev) int {
		if a.rev != b.rev {
			return cmp.Compare(a.rev, b.rev)
		}
		return strings.Compare(a.t.Metadata.Name, b.t.Metadata.Name)
	})
	for _, o := range ordered {
		raw := o.t
		id := raw.Metadata.Name
		tierName := raw.Spec.Tier
		if tierName == "" {
			tierName = DefaultTier
		}
		tier, ok := c.tiers[tierName]
		if !ok {
			c.rejected[id] = fmt.Errorf("spec.tier: unknown tier %q", tierName)
			continue
		}
		if h, owner := c.hostConflict(raw); owner != "" {
			c.rejected[id] = fmt.Errorf("spec.hosts: host %q already belongs to tenant %q", h, owner)
			continue
		}
		t := (*Tenant)(nil)
		if reuse && prev.inputs[id] == raw {
			t = prev.tenants[id]
		}
		if t == nil {
			t = DefaultedTenant(raw, tier)
		}
		c.tenants[id] = t
		c.inputs[id] = raw
		for _, h := range t.Spec.Hosts {
			c.hosts[strings.ToLower(h)] = id
		}
		for _, j := range t.Spec.Auth.JWT {
			c.issuers[j.Issuer] = append(c.issuers[j.Issuer], id)
		}
		c.ids = append(c.ids, id)
	}
	sort.Strings(c.ids)
	return c
}

// maxIncremental bounds the changed tenants applyChanges handles; a bigger
// change (an import) is rebuilt whole.
const maxIncremental = 64

// applyChanges builds the tenant indexes from prev's by applying only the
// tenants that changed, which is what keeps a one-tenant change cheap with
// thousands of tenants (copying maps is much cheaper than filling them).
// It reports false, leaving c's tenant indexes untouched, whenever the
// result could differ from a full build: prev left tenants out, or a
// changed tenant names an unknown tier or a host another tenant holds.
func (c *Catalog) applyChanges(in []*Tenant, prev *Catalog) bool {
	if len(prev.rejected) > 0 {
		return false
	}
	var changed []*Tenant
	unchanged, replaced := 0, 0
	for _, raw := range in {
		old, ok := prev.inputs[raw.Metadata.Name]
		switch {
		case ok && old == raw:
			unchanged++
		case ok:
			replaced++
			changed = append(changed, raw)
		default:
			changed = append(changed, raw)
		}
	}
	if len(changed) > maxIncremental {
		return false
	}
	removed := len(prev.inputs) - unchanged - replaced
	changedIDs := make([]string, 0, len(changed)+removed)
	for _, raw := range changed {
		changedIDs = append(changedIDs, raw.Metadata.Name)
	}
	tenants, inputs := maps.Clone(prev.tenants), maps.Clone(prev.inputs)
	hosts, issuers := maps.Clone(prev.hosts), maps.Clone(prev.issuers)
	drop := func(id string) {
		old := tenants[id]
		delete(tenants, id)
		delete(inputs, id)
		for _, h := range old.Spec.Hosts {
			if hosts[strings.ToLower(h)] == id {
				delete(hosts, strings.ToLower(h))
			}
		}
		for _, j := range old.Spec.Auth.JWT {
			// A new slice: prev's is shared and immutable.
			issuers[j.Issuer] = slices.DeleteFunc(slices.Clone(issuers[j.Issuer]), func(x string) bool { return x == id })
			if len(issuers[j.Issuer]) == 0 {
				delete(issuers, j.Issuer)
			}
		}
	}
	if removed > 0 {
		present := make(map[string]bool, len(in))
		for _, raw := range in {
			present[raw.Metadata.Name] = true
		}
		for id := range prev.inputs {
			if !present[id] {
				drop(id)
				changedIDs = append(changedIDs, id)
			}
		}
	}
	for _, raw := range changed {
		id := raw.Metadata.Name
		if _, ok := tenants[id]; ok {
			drop(id)
		}
	}
	for _, raw := range changed {
		id := raw.Metadata.Name
		tierName := raw.Spec.Tier
		if tierName == "" {
			tierName = DefaultTier
		}
		tier, ok := c.tiers[tierName]
		if !ok {
			return false
		}
		for _, h := range raw.Spec.Hosts {
			if owner, taken := hosts[strings.ToLower(h)]; taken && owner != id {
				return false
			}
		}
		t := DefaultedTenant(raw, tier)
		tenants[id], inputs[id] = t, raw
		for _, h := range t.Spec.Hosts {
			hosts[strings.ToLower(h)] = id
		}
		for _, j := range t.Spec.Auth.JWT {
			issuers[j.Issuer] = append(slices.Clone(issuers[j.Issuer]), id)
		}
	}
	c.tenants, c.inputs, c.hosts, c.issuers = tenants, inputs, hosts, issuers
	c.base, c.changed = prev.serial, changedIDs
	if removed == 0 && len(changed) == replaced {
		c.ids = prev.ids // same tenants: the sorted ids are shared
	} else {
		c.ids = slices.Sorted(maps.Keys(tenants))
	}
	return true
}

func (c *Catalog) hostConflict(t *Tenant) (host, owner string) {
	for _, h := range t.Spec.Hosts {
		if o, ok := c.hosts[strings.ToLower(h)]; ok && o != t.Metadata.Name {
			return h, o
		}
	}
	return "", ""
}

func revOf(t *Tenant) int64 {
	v, err := strconv.ParseInt(t.Metadata.ResourceVersion, 10, 64)
	if err != nil {
		return 0 // not yet stored: sorts first, by name
	}
	return v
}

func sameTierMap(a, b map[string]*Tier) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameMesh(a, b *MeshConfig) bool {
	return a.Metadata.ResourceVersion == b.Metadata.ResourceVersion
}

// Revision is the etcd revision the Catalog reflects; it is the version of
// everything built from it and never repeats across restarts.
func (c *Catalog) Revision() int64 { return c.revision }

// Mesh returns the defaulted MeshConfig.
func (c *Catalog) Mesh() *MeshConfig { return c.mesh }

// Tier returns a tier by name.
func (c *Catalog) Tier(name string) (*Tier, bool) { t, ok := c.tiers[name]; return t, ok }

// Tiers returns every tier, sorted by name.
func (c *Catalog) Tiers() []*Tier {
	out := make([]*Tier, 0, len(c.tiers))
	for _, t := range c.tiers {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out
}

// Tenant returns a defaulted tenant by id.
func (c *Catalog) Tenant(id string) (*Tenant, bool) { t, ok := c.tenants[id]; return t, ok }

// TenantIDs returns the ids of all tenants in the Catalog, sorted.
func (c *Catalog) TenantIDs() []string { return c.ids }

// Tenants returns every tenant, sorted by id.
func (c *Catalog) Tenants() []*Tenant {
	out := make([]*Tenant, len(c.ids))
	for i, id := range c.ids {
		out[i] = c.tenants[id]
	}
	return out
}

// Len is the number of tenants.
func (c *Catalog) Len() int { return len(c.ids) }

// TenantByHost returns the tenant that owns a host (case-insensitive,
// port stripped).
func (c *Catalog) TenantByHost(host string) (*Tenant, bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	id, ok := c.hosts[strings.ToLower(host)]
	if !ok {
		return nil, false
	}
	return c.tenants[id], true
}

// TenantsByIssuer returns the tenants that list a JWT issuer as their own.
func (c *Catalog) TenantsByIssuer(iss string) []string { return c.issuers[iss] }

// PlatformIssuer returns the MeshConfig's issuer with that name.
func (c *Catalog) PlatformIssuer(iss string) (*JWTIssuer, bool) {
	for i := range c.mesh.Spec.JWT {
		if c.mesh.Spec.JWT[i].Issuer == iss {
			return &c.mesh.Spec.JWT[i], true
		}
	}
	return nil, false
}

// APIKey returns an API key record by key id.
func (c *Catalog) APIKey(id string) (*APIKey, bool) { k, ok := c.apiKeys[id]; return k, ok }

// Rejected returns tenants left out because they conflict with others.
func (c *Catalog) Rejected() map[string]error { return c.rejected }

// ChangedSince returns the ids of the tenants added, changed or removed
// since prev, when this Catalog was built incrementally from exactly prev
// (same mesh and tiers; every other tenant is the very same object). ok is
// false otherwise: the caller must compare every tenant (Unchanged).
func (c *Catalog) ChangedSince(prev *Catalog) (ids []string, ok bool) {
	if prev == nil || c.base == 0 || c.base != prev.serial {
		return nil, false
	}
	return c.changed, true
}

// Unchanged reports whether tenant id is the very same object in both
// catalogs, so everything derived from it can be reused.
func (c *Catalog) Unchanged(prev *Catalog, id string) bool {
	if prev == nil {
		return false
	}
	a, ok1 := c.tenants[id]
	b, ok2 := prev.tenants[id]
	return ok1 && ok2 && a == b
}

// SharedServices returns every shared service, sorted by name. The slice
// and the services must not be modified.
func (c *Catalog) SharedServices() []*SharedService { return c.shared }

// SharedService returns a shared service by name.
func (c *Catalog) SharedService(name string) (*SharedService, bool) {
	i := sort.Search(len(c.shared), func(i int) bool { return c.shared[i].Metadata.Name >= name })
	if i < len(c.shared) && c.shared[i].Metadata.Name == name {
		return c.shared[i], true
	}
	return nil, false
}

// EntitledSharedServices returns the shared services tenant t may call
// (SharedService.Entitles), sorted by name.
func (c *Catalog) EntitledSharedServices(t *Tenant) []*SharedService {
	var out []*SharedService
	for _, s := range c.shared {
		if s.Entitles(t) {
			out = append(out, s)
		}
	}
	return out
}
