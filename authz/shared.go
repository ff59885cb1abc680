package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// sharedRoutePrefix keeps the decision cache keys of shared service calls
// apart from tenant routes (route names cannot contain "/").
const sharedRoutePrefix = "shared/"

// resolveShared resolves the target of a shared service call. The tenant
// is not known from the route, so a candidate is derived from the request
// — the x-tenant-id header, else the API key's record, else the token's
// issuer (a tenant issuer vouches for one tenant) or, for a platform
// issuer, the token's tenant claim — and decide then verifies the
// credential for that candidate exactly as on a route of the candidate's
// own: the verified tenant must equal it, so the hint can never widen what
// the credential proves. The allow headers are those of a tenant route
// (x-tenant-id overwritten, which is what the edge then routes on to pick
// the tenant's alias).
func (idx *index) resolveShared(r *request) (target, Reason, error) {
	svc, ok := idx.cat.SharedService(r.sharedService)
	if !ok {
		return target{}, ReasonUnknownRoute, fmt.Errorf("shared service %q is not in the catalog", clip(r.sharedService))
	}
	candidate, reason, err := idx.sharedCandidate(r)
	if reason != ReasonOK {
		return target{}, reason, err
	}
	te, ok := idx.tenants[candidate]
	if !ok {
		return target{}, ReasonUnknownTenant, fmt.Errorf("tenant %q is not in the catalog", clip(candidate))
	}
	// From here on the request is handled as one on a route of the
	// candidate tenant: logs, metrics and the decision cache key say so.
	r.routeTenant, r.route = candidate, sharedRoutePrefix+svc.Name()
	return target{tenant: te, shared: svc}, ReasonOK, nil
}

// sharedCandidate names the tenant a shared service call claims to come
// from. Nothing here is trusted: decide verifies the credential for
// the candidate afterwards.
func (idx *index) sharedCandidate(r *request) (string, Reason, error) {
	switch {
	case r.hasTenant:
		return r.tenantHdr, ReasonOK, nil
	case r.hasBearer:
		peek, err := peekToken(r.bearer)
		if err != nil {
			return "", ReasonInvalidToken, err
		}
		if owners := idx.cat.TenantsByIssuer(peek.iss); len(owners) == 1 {
			return owners[0], ReasonOK, nil
		}
		if is, ok := idx.platform[peek.iss]; ok {
			t, err := peekClaim(r.bearer, is.cfg.TenantClaim)
			if err != nil || t == "" {
				return "", ReasonMissingTenantClaim, fmt.Errorf("claim %q: %v", is.cfg.TenantClaim, err)
			}
			return t, ReasonOK, nil
		}
		return "", ReasonUntrustedIssuer, fmt.Errorf("issuer %q cannot name a tenant here; send x-tenant-id", clip(peek.iss))
	case r.apiKey != "":
		id, _, ok := tenants.ParseAPIKey(r.apiKey)
		if !ok {
			return "", ReasonInvalidAPIKey, errors.New("not a tenantmesh api key")
		}
		rec, ok := idx.cat.APIKey(id)
		if !ok {
			return "", ReasonInvalidAPIKey, errBadAPIKey
		}
		return rec.Tenant, ReasonOK, nil
	}
	return "", ReasonMissingCredentials, nil
}

// peekClaim reads one string claim of an unverified token.
func peekClaim(raw, claim string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	var claims map[string]json.RawMessage
	if err := decodeSegment(parts[1], &claims); err != nil {
		return "", err
	}
	var v string
	if err := json.Unmarshal(claims[claim], &v); err != nil {
		return "", err
	}
	return v, nil
}
