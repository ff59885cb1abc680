package tenants

import (
	"cmp"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// Catalog is the validated, defaulted, resolved, immutable view of
// everything in the store at one etcd revision: every tenant, the
// MeshConfig and every shared service in it carries its resolved view
// (resolved.go), computed once when the Catalog admitted it. A change produces a new Catalog that shares
// the unchanged tenants (same pointers), which is what lets translation
// redo only the tenants that changed. Nothing may mutate a Catalog or any
// object reachable from it.
type Catalog struct {
	revision int64
	mesh     *MeshConfig
	tiers    map[string]*Tier
	// tenantIndex holds the admitted tenants (catalog_admit.go); its
	// issuers are the tenants' own, not the platform's.
	tenantIndex
	ids      []string
	apiKeys  map[string]*APIKey
	rejected map[string]error
	shared   []*SharedService // defaulted, sorted by name (SharedService kind)
	// sharedIn are the shared services as given, by name, to lend the
	// defaulted copies of unchanged ones to the next Catalog.
	sharedIn map[string]*SharedService

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
// Conflicts between tenants (a host or an unshared issuer claimed twice,
// a tier that does not exist) and with the mesh (a platform host or
// issuer claimed) cannot be caught by validating one tenant alone; the
// tenant that loses is left out and reported by Rejected, never the other
// one.
func NewCatalog(in Input, prev *Catalog) *Catalog {
	c := &Catalog{
		serial:   catalogs.Add(1),
		revision: in.Revision,
		mesh:     DefaultedMeshConfig(in.Mesh),
		tiers:    BuiltinTiers(),
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
	c.admitShared(in.SharedServices, prev)
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
	ix := newTenantIndex(len(in.Tenants), c.mesh)
	for _, o := range ordered {
		id := o.t.ID()
		var lent *Tenant
		if reuse && prev.inputs[id] == o.t {
			lent = prev.tenants[id]
		}
		if err := ix.admit(o.t, c.tiers, lent); err != nil {
			c.rejected[id] = err
		}
	}
	c.tenantIndex = ix
	c.ids = slices.Sorted(maps.Keys(ix.tenants))
	return c
}

// admitShared defaults the shared services, reusing prev's copy of every
// service given as the same object as before: unchanged services keep
// their pointers, which is how the xds layer sees that they did not
// change. A shared service depends on nothing else in the Catalog.
func (c *Catalog) admitShared(in []*SharedService, prev *Catalog) {
	c.shared = make([]*SharedService, len(in))
	c.sharedIn = make(map[string]*SharedService, len(in))
	for i, s := range in {
		var d *SharedService
		if prev != nil && prev.sharedIn[s.Name()] == s {
			d, _ = prev.SharedService(s.Name())
		}
		if d == nil {
			d = DefaultedSharedService(s)
		}
		c.shared[i], c.sharedIn[s.Name()] = d, s
	}
	sort.Slice(c.shared, func(i, j int) bool { return c.shared[i].Metadata.Name < c.shared[j].Metadata.Name })
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

// TenantsByIssuer returns the tenant that holds a JWT issuer as its own
// (at most one). Issuers tenants share (JWTIssuer.Shared) and platform
// issuers are not listed: a token of theirs does not say by its issuer
// alone which tenant it is for (authz.index.sharedCandidate then needs
// x-tenant-id, or the platform issuer's tenant claim), whoever else
// shares the issuer.
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
