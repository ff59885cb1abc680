package tenants

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// tenantIndex holds a Catalog's admitted tenants and the lookups built
// from them. A full build fills a fresh one; an incremental build clones
// its predecessor's and applies the changes. Both go through admit, so a
// tenant is let in or left out by the same rules either way.
type tenantIndex struct {
	tenants map[string]*Tenant // defaulted
	inputs  map[string]*Tenant // as given, to lend defaulted copies
	hosts   map[string]string  // lower-case host → tenant id
	// issuers are the issuers one tenant holds (at most one id each);
	// sharedIssuers those its tenants share (JWTIssuer.Shared). Platform
	// issuers a tenant shares are in neither: the platform holds them.
	issuers       map[string][]string
	sharedIssuers map[string][]string
	// reserved are the mesh's platform hosts and issuers; the same mesh
	// for every index cloned from this one (applyChanges needs sameMesh).
	reserved reserved
	// inherited: the issuers' slices belong to the Catalog the index was
	// cloned from (immutable), so they are copied before they change.
	// A fresh index appends in place: with thousands of tenants naming one
	// issuer, copying on every append would be quadratic.
	inherited bool
}

func newTenantIndex(n int, mesh *MeshConfig) tenantIndex {
	return tenantIndex{
		tenants:       make(map[string]*Tenant, n),
		inputs:        make(map[string]*Tenant, n),
		hosts:         map[string]string{},
		issuers:       map[string][]string{},
		sharedIssuers: map[string][]string{},
		reserved:      reservedOf(mesh),
	}
}

// clone copies the maps, which is much cheaper than filling them again;
// the tenants and the issuers' slices are shared (see inherited).
func (ix *tenantIndex) clone() tenantIndex {
	return tenantIndex{
		tenants:       maps.Clone(ix.tenants),
		inputs:        maps.Clone(ix.inputs),
		hosts:         maps.Clone(ix.hosts),
		issuers:       maps.Clone(ix.issuers),
		sharedIssuers: maps.Clone(ix.sharedIssuers),
		reserved:      ix.reserved,
		inherited:     true,
	}
}

// admit decides whether tenant raw enters the index and, when it does,
// adds its defaulted form. Validation has checked raw on its own; what it
// cannot see is checked here: the tier must exist, no host may be a
// platform host or already belong to another tenant of the index, and no
// issuer may be a platform issuer or another tenant's unless every side
// shares it (validate_reserved.go) — which makes the order of admission
// matter (NewCatalog admits older tenants first). lent, when not nil, is
// raw's defaulted form from a Catalog with the same tiers and mesh, used
// instead of defaulting raw again.
func (ix *tenantIndex) admit(raw *Tenant, tiers map[string]*Tier, lent *Tenant) error {
	id := raw.ID()
	tier, ok := tiers[tierName(raw)]
	if !ok {
		return fmt.Errorf("spec.tier: unknown tier %q", tierName(raw))
	}
	for i, h := range raw.Spec.Hosts {
		if msg := ix.reserved.hostProblem(h); msg != "" {
			return fmt.Errorf("spec.hosts[%d]: %s", i, msg)
		}
		if owner, taken := ix.hosts[strings.ToLower(h)]; taken && owner != id {
			return fmt.Errorf("spec.hosts[%d]: host %q already belongs to tenant %q", i, h, owner)
		}
	}
	for i := range raw.Spec.Auth.JWT {
		j := &raw.Spec.Auth.JWT[i]
		if msg := ix.issuerProblem(id, j); msg != "" {
			return fmt.Errorf("spec.auth.jwt[%d].issuer: %s", i, msg)
		}
	}
	t := lent
	if t == nil {
		t = DefaultedTenant(raw, tier)
	}
	ix.tenants[id], ix.inputs[id] = t, raw
	for _, h := range t.Spec.Hosts {
		ix.hosts[strings.ToLower(h)] = id
	}
	for _, j := range t.Spec.Auth.JWT {
		m := ix.issuers
		switch {
		case ix.reserved.isPlatformIssuer(j.Issuer):
			continue
		case j.Shared:
			m = ix.sharedIssuers
		}
		ids := m[j.Issuer]
		if ix.inherited {
			ids = slices.Clone(ids)
		}
		m[j.Issuer] = append(ids, id)
	}
	return nil
}

// issuerProblem says why tenant id may not list j, "" if it may.
func (ix *tenantIndex) issuerProblem(id string, j *JWTIssuer) string {
	if msg := ix.reserved.issuerProblem(j); msg != "" || ix.reserved.isPlatformIssuer(j.Issuer) {
		return msg
	}
	others := func(ids []string) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(x string) bool { return x == id })
	}
	if holders := others(ix.issuers[j.Issuer]); len(holders) > 0 {
		return IssuerClaimProblem(j.Issuer, j.Shared, holders, false)
	}
	return IssuerClaimProblem(j.Issuer, j.Shared, others(ix.sharedIssuers[j.Issuer]), true)
}

// drop removes tenant id and what it owns from the lookups.
func (ix *tenantIndex) drop(id string) {
	old := ix.tenants[id]
	delete(ix.tenants, id)
	delete(ix.inputs, id)
	if old == nil {
		return
	}
	for _, h := range old.Spec.Hosts {
		if ix.hosts[strings.ToLower(h)] == id {
			delete(ix.hosts, strings.ToLower(h))
		}
	}
	for _, j := range old.Spec.Auth.JWT {
		for _, m := range []map[string][]string{ix.issuers, ix.sharedIssuers} {
			if _, ok := m[j.Issuer]; !ok {
				continue
			}
			// A new slice: a cloned index shares its predecessor's.
			ids := slices.DeleteFunc(slices.Clone(m[j.Issuer]), func(x string) bool { return x == id })
			if len(ids) == 0 {
				delete(m, j.Issuer)
			} else {
				m[j.Issuer] = ids
			}
		}
	}
}

// maxIncremental bounds the changed tenants applyChanges handles; a bigger
// change (an import) is rebuilt whole.
const maxIncremental = 64

// applyChanges builds c's tenant index from prev's by applying only the
// tenants that changed, which is what keeps a one-tenant change cheap with
// thousands of tenants. It reports false, leaving c untouched, whenever
// the result could differ from a full build: prev left tenants out, or
// admit refuses a changed tenant — who wins a conflict depends on the
// tenants' ages, which only the full build orders.
func (c *Catalog) applyChanges(in []*Tenant, prev *Catalog) bool {
	if len(prev.rejected) > 0 {
		return false
	}
	var changed []*Tenant
	unchanged, replaced := 0, 0
	for _, raw := range in {
		old, ok := prev.inputs[raw.ID()]
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
		changedIDs = append(changedIDs, raw.ID())
	}
	ix := prev.tenantIndex.clone()
	if removed > 0 {
		present := make(map[string]bool, len(in))
		for _, raw := range in {
			present[raw.ID()] = true
		}
		for id := range prev.inputs {
			if !present[id] {
				ix.drop(id)
				changedIDs = append(changedIDs, id)
			}
		}
	}
	// Every changed tenant leaves first, so one that takes over a host
	// another changed tenant gave up is not refused for it.
	for _, raw := range changed {
		ix.drop(raw.ID())
	}
	for _, raw := range changed {
		if err := ix.admit(raw, c.tiers, nil); err != nil {
			return false
		}
	}
	c.tenantIndex = ix
	c.base, c.changed = prev.serial, changedIDs
	if removed == 0 && len(changed) == replaced {
		c.ids = prev.ids // same tenants: the sorted ids are shared
	} else {
		c.ids = slices.Sorted(maps.Keys(ix.tenants))
	}
	return true
}
