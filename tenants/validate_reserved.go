package tenants

import (
	"fmt"
	"sort"
	"strings"
)

// Reserved identifiers. Some names decide who gets a request or whose
// keys verify a token, so one tenant taking them over hurts others:
//
//   - a platform host (MeshConfig spec.platformHosts) serves the path form
//     and the shared services for every tenant; a tenant claiming it in
//     spec.hosts would get a virtual host whose domain "*|<host>" (a
//     suffix wildcard, translate.hostKeys) Envoy prefers over the prefix
//     wildcards "/tenants/<id>/*" and the shared virtual host's "*"
//     (route_components.proto, VirtualHost.domains: suffix wildcards are
//     matched before prefix wildcards, which are matched before "*"), and
//     so take every path on that host;
//   - an issuer (spec.auth.jwt[].issuer) names, on shared-service routes,
//     the tenant its tokens are for (authz.index.sharedCandidate), and
//     for the platform issuers (MeshConfig spec.jwt) any tenant; a second
//     tenant listing it would break the first one's tokens.
//
// So a tenant may not claim a platform host, and an issuer is held by one
// tenant unless every side declares the share (JWTIssuer.Shared). Apply
// refuses a claim at its field path (ValidateSet here for the documents
// and the stored MeshConfig, the store's issuer claims for other stored
// tenants); the Catalog rejects what reaches etcd by hand, and a tenant
// that a MeshConfig change puts in conflict (tenantIndex.admit).

// reserved are the platform's names, from a (defaulted or raw) MeshConfig.
type reserved struct {
	hosts   map[string]bool // lower case
	issuers map[string]int  // iss → index in MeshConfig spec.jwt
	mesh    *MeshConfig
}

func reservedOf(m *MeshConfig) reserved {
	r := reserved{hosts: map[string]bool{}, issuers: map[string]int{}, mesh: m}
	if m == nil {
		return r
	}
	for _, h := range m.Spec.PlatformHosts {
		r.hosts[strings.ToLower(h)] = true
	}
	for i, j := range m.Spec.JWT {
		if _, dup := r.issuers[j.Issuer]; !dup {
			r.issuers[j.Issuer] = i
		}
	}
	return r
}

// hostProblem says why a tenant may not claim host h, "" if it may. A
// wildcard host covering a platform host is refused too: translation
// refuses tenant wildcards today (translate.checkTenant), but validation
// accepts them, and the day they are served they would take the platform
// host.
func (r reserved) hostProblem(h string) string {
	l := strings.ToLower(h)
	if r.hosts[l] {
		return fmt.Sprintf("%q is a platform host (MeshConfig spec.platformHosts)", h)
	}
	if suffix, ok := strings.CutPrefix(l, "*."); ok {
		covered := make([]string, 0, len(r.hosts))
		for p := range r.hosts {
			if strings.HasSuffix(p, "."+suffix) {
				covered = append(covered, p)
			}
		}
		if len(covered) > 0 {
			sort.Strings(covered)
			return fmt.Sprintf("%q covers the platform host %q (MeshConfig spec.platformHosts)", h, covered[0])
		}
	}
	return ""
}

// isPlatformIssuer reports whether iss is one of the MeshConfig's issuers.
func (r reserved) isPlatformIssuer(iss string) bool {
	_, ok := r.issuers[iss]
	return ok
}

// issuerProblem says why a tenant may not list j because it is a platform
// issuer, "" if it may: it is not one, or both sides share it.
func (r reserved) issuerProblem(j *JWTIssuer) string {
	i, ok := r.issuers[j.Issuer]
	if !ok {
		return ""
	}
	p := r.mesh.Spec.JWT[i]
	switch {
	case p.Shared && j.Shared:
		return ""
	case !p.Shared:
		return fmt.Sprintf("%q is a platform issuer (MeshConfig spec.jwt[%d]), which is not shared: a tenant may list it only when both the MeshConfig's issuer and the tenant's set shared: true", j.Issuer, i)
	default:
		return fmt.Sprintf("%q is a platform issuer (MeshConfig spec.jwt[%d]): set shared: true to share it (the MeshConfig shares it)", j.Issuer, i)
	}
}

// IssuerClaimProblem says why a tenant may not list issuer iss (shared:
// its JWTIssuer.Shared) when the tenants holders already list it, "" if
// it may. holdersShared tells whether they share it: every holder of a
// shared issuer set shared: true; an issuer not shared has one holder.
func IssuerClaimProblem(iss string, shared bool, holders []string, holdersShared bool) string {
	switch {
	case len(holders) == 0:
		return ""
	case !holdersShared && shared:
		return fmt.Sprintf("issuer %q already belongs to tenant %q, which does not share it (shared: true on both sides)", iss, holders[0])
	case !holdersShared:
		return fmt.Sprintf("issuer %q already belongs to tenant %q", iss, holders[0])
	case !shared:
		return fmt.Sprintf("issuer %q is shared by tenant(s) %s: set shared: true to share it too", iss, strings.Join(holders, ", "))
	}
	return ""
}

// Stored is what ValidateSet checks documents against besides each
// other: what the store already holds.
type Stored struct {
	// Tiers are the stored tiers by name (the built-in ones always count).
	Tiers map[string]*Tier
	// Mesh is the stored MeshConfig, nil if none; a MeshConfig among the
	// documents replaces it.
	Mesh *MeshConfig
}

// checkReserved reports the hosts and issuers of tenant t that the
// platform reserves.
func checkReserved(e *errs, t *Tenant, r reserved) {
	for i, h := range t.Spec.Hosts {
		if msg := r.hostProblem(h); msg != "" {
			e.add(Path("spec.hosts").Index(i), "%s", msg)
		}
	}
	for i := range t.Spec.Auth.JWT {
		if msg := r.issuerProblem(&t.Spec.Auth.JWT[i]); msg != "" {
			e.add(Path("spec.auth.jwt").Index(i).Child("issuer"), "%s", msg)
		}
	}
}

// issuerHolder is a tenant of a set listing an issuer.
type issuerHolder struct {
	doc    Document
	shared bool
}

// checkSetIssuers reports an issuer that another tenant of the same set
// lists too, when not both share it. As for hosts, the first document
// keeps it; conflicts with stored tenants are the store's issuer claims'.
func checkSetIssuers(e *errs, t *Tenant, d Document, r reserved, holders map[string][]issuerHolder) {
	for i, j := range t.Spec.Auth.JWT {
		if r.isPlatformIssuer(j.Issuer) {
			continue // checkReserved: the platform holds it
		}
		for _, h := range holders[j.Issuer] {
			if h.doc.Name() != t.Metadata.Name && !(h.shared && j.Shared) {
				e.add(Path("spec.auth.jwt").Index(i).Child("issuer"),
					"issuer %q is also listed by tenant %q (%s): two tenants may list one issuer only when both set shared: true", j.Issuer, h.doc.Name(), where(h.doc))
				break
			}
		}
		holders[j.Issuer] = append(holders[j.Issuer], issuerHolder{doc: d, shared: j.Shared})
	}
}
