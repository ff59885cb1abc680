package authz

import (
	"fmt"
	"log/slog"
	"maps"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/tenantmesh/tenantmesh/authz/jwks"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// index is what Check reads: one Catalog plus everything derived from it
// that is too costly to derive per request (compiled body schemas, JWT
// parsers, key sources). It is immutable once published; Update builds a
// new one that shares the entries of unchanged tenants.
type index struct {
	cat *tenants.Catalog
	// gen increases on every Update; decision cache keys carry it, so a
	// verification done under an older catalog is never reused (even when
	// a test or a restore hands us two catalogs with the same revision).
	gen      uint64
	tenants  map[string]*tenantEntry
	platform map[string]*issuer
	mesh     *tenants.MeshConfig // the Catalog mesh the platform issuers were built from
	// remotesChanged is false when the update certainly left the set of
	// JWKS URIs in use as it was (only tenants without remote keys changed).
	remotesChanged bool
}

// tenantEntry is the authz view of one tenant.
type tenantEntry struct {
	t       *tenants.Tenant
	locale  string
	issuers map[string]*issuer
	routes  map[string]*routeEntry
}

// routeEntry holds the per-route rules.
type routeEntry struct {
	roles    []string
	features []string
	// schema validates JSON bodies; nil when the route has no validation.
	schema  *jsonschema.Schema
	maxBody int
	// schemaErr is set when the route's schema does not compile; requests
	// to that route are denied (route_misconfigured), other routes work.
	schemaErr error
}

// keySources hands out key sources for issuers; the Server implements it
// so that remote key sets survive config changes.
type keySources interface {
	remote(uri string) jwks.Source
}

// buildIndex derives the index of cat, reusing prev's entries for the
// tenants cat.Unchanged reports as unchanged — without looking at each
// tenant when cat can name its changes since prev's catalog.
func buildIndex(cat *tenants.Catalog, prev *index, ks keySources, opts *issuerOptions, log *slog.Logger) *index {
	idx := &index{
		cat:     cat,
		tenants: make(map[string]*tenantEntry, cat.Len()),
		mesh:    cat.Mesh(),
	}
	var prevCat *tenants.Catalog
	if prev != nil {
		idx.gen = prev.gen + 1
		prevCat = prev.cat
	}
	if ids, ok := cat.ChangedSince(prevCat); ok {
		// One tenant changed among thousands: copy the entries (a bulk map
		// copy), rebuild only the named ones.
		idx.tenants = maps.Clone(prev.tenants)
		for _, id := range ids {
			idx.remotesChanged = idx.remotesChanged || prev.tenants[id].usesRemoteKeys()
			if t, ok := cat.Tenant(id); ok {
				idx.tenants[id] = newTenantEntry(t, ks, opts, log.With("tenant_id", id))
				idx.remotesChanged = idx.remotesChanged || idx.tenants[id].usesRemoteKeys()
			} else {
				delete(idx.tenants, id)
			}
		}
	} else {
		idx.remotesChanged = true
		for _, t := range cat.Tenants() {
			id := t.ID()
			if prevCat != nil && cat.Unchanged(prevCat, id) {
				idx.tenants[id] = prev.tenants[id]
				continue
			}
			idx.tenants[id] = newTenantEntry(t, ks, opts, log.With("tenant_id", id))
		}
	}
	if prev != nil && prev.mesh == idx.mesh {
		idx.platform = prev.platform
	} else {
		idx.remotesChanged = true
		idx.platform = make(map[string]*issuer, len(idx.mesh.Spec.JWT))
		for _, j := range idx.mesh.Spec.JWT {
			idx.platform[j.Issuer] = newIssuer(j, "", ks, opts, log.With("issuer", j.Issuer))
		}
	}
	return idx
}

func newTenantEntry(t *tenants.Tenant, ks keySources, opts *issuerOptions, log *slog.Logger) *tenantEntry {
	e := &tenantEntry{
		t:       t,
		locale:  tenants.DefaultLocale,
		issuers: make(map[string]*issuer, len(t.Spec.Auth.JWT)),
		routes:  make(map[string]*routeEntry, len(t.Spec.Routes)),
	}
	if t.Spec.Errors != nil && messages[t.Spec.Errors.Locale] != nil {
		e.locale = t.Spec.Errors.Locale
	}
	for _, j := range t.Spec.Auth.JWT {
		e.issuers[j.Issuer] = newIssuer(j, t.ID(), ks, opts, log.With("issuer", j.Issuer))
	}
	for i := range t.Spec.Routes {
		r := &t.Spec.Routes[i]
		re := &routeEntry{roles: r.Roles, features: r.Features}
		if v := r.RequestValidation; v != nil && len(v.BodySchema) > 0 {
			// What Envoy buffers (translate sets max_request_bytes from it);
			// unset means the default, as in CompileBodySchema's cost bound.
			re.maxBody = v.MaxBodyBytes
			if re.maxBody <= 0 {
				re.maxBody = tenants.DefaultMaxBodyBytes
			}
			re.maxBody = min(re.maxBody, tenants.MaxBodyBytesLimit)
			// The compiler validation uses, so a schema that validated is
			// exactly the one enforced here.
			sch, err := tenants.CompileBodySchema(v.BodySchema, v.MaxBodyBytes)
			re.schema = sch
			if err != nil {
				re.schemaErr = fmt.Errorf("body schema of route %s: %w", r.Name, err)
				log.Error("route body schema does not compile; the route denies every request",
					"route", r.Name, "error", re.schemaErr)
			}
		}
		e.routes[r.Name] = re
	}
	return e
}

// issuerFor finds the issuer config that verifies a token claiming iss on
// a route of tenant te: the tenant's own issuers first, then the platform
// issuers, then — so that a genuine token of another tenant is answered
// "cross-tenant" (403) rather than "invalid" (401) — another tenant's
// issuer, which can only ever vouch for that other tenant.
func (idx *index) issuerFor(te *tenantEntry, iss string) (*issuer, bool) {
	if is, ok := te.issuers[iss]; ok {
		return is, true
	}
	if is, ok := idx.platform[iss]; ok {
		return is, true
	}
	for _, owner := range idx.cat.TenantsByIssuer(iss) {
		if o, ok := idx.tenants[owner]; ok {
			if is, ok := o.issuers[iss]; ok {
				return is, true
			}
		}
	}
	return nil, false
}

// usesRemoteKeys reports whether any of the tenant's issuers fetches its
// keys by URI; false for a nil entry.
func (e *tenantEntry) usesRemoteKeys() bool {
	if e == nil {
		return false
	}
	for _, is := range e.issuers {
		if is.cfg.JWKSURI != "" && is.cfg.JWKS == "" {
			return true
		}
	}
	return false
}

// remoteURIs lists every JWKS URI the index uses.
func (idx *index) remoteURIs() map[string]bool {
	used := map[string]bool{}
	add := func(m map[string]*issuer) {
		for _, is := range m {
			if is.cfg.JWKSURI != "" && is.cfg.JWKS == "" {
				used[is.cfg.JWKSURI] = true
			}
		}
	}
	add(idx.platform)
	for _, te := range idx.tenants {
		add(te.issuers)
	}
	return used
}
