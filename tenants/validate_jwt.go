package tenants

import (
	"encoding/json"
	"net/url"
	"strings"
)

// JWTAlgorithms are the signature algorithms an issuer may use. All are
// asymmetric: HS* would need the issuer's signing secret on the platform,
// which could then mint tokens for any tenant; "none" is no signature.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}

// validateIssuers checks tenant issuers (Tenant spec.auth.jwt) and
// platform issuers (MeshConfig spec.jwt) alike.
func validateIssuers(e *errs, p Path, issuers []JWTIssuer) {
	seen := make(map[string]bool, len(issuers))
	for i := range issuers {
		ip := p.Index(i)
		iss := &issuers[i]
		switch {
		case strings.TrimSpace(iss.Issuer) == "":
			e.add(ip.Child("issuer"), "required: the token's iss claim")
		case !printable(iss.Issuer) || strings.ContainsAny(iss.Issuer, " \t"):
			e.add(ip.Child("issuer"), "%q must not contain spaces or control characters", iss.Issuer)
		case seen[iss.Issuer]:
			e.add(ip.Child("issuer"), "issuer %q is listed twice", iss.Issuer)
		}
		seen[iss.Issuer] = true
		for j, a := range iss.Audiences {
			if strings.TrimSpace(a) == "" {
				e.add(ip.Child("audiences").Index(j), "must not be empty")
			}
		}
		validateKeySource(e, ip, iss)
		validateAlgorithms(e, ip.Child("algorithms"), iss.Algorithms)
		checkClaimName(e, ip.Child("tenantClaim"), iss.TenantClaim)
		checkClaimName(e, ip.Child("rolesClaim"), iss.RolesClaim)
	}
}

func validateKeySource(e *errs, p Path, iss *JWTIssuer) {
	switch {
	case iss.JWKSURI == "" && iss.JWKS == "":
		e.add(p, "set exactly one of jwksUri and jwks: the issuer's verification keys are missing")
	case iss.JWKSURI != "" && iss.JWKS != "":
		e.add(p, "set exactly one of jwksUri and jwks, not both")
	case iss.JWKSURI != "":
		if msg := jwksURIProblem(iss.JWKSURI); msg != "" {
			e.add(p.Child("jwksUri"), "%s", msg)
		}
	default:
		if msg := jwksProblem(iss.JWKS); msg != "" {
			e.add(p.Child("jwks"), "%s", msg)
		}
	}
}

// jwksURIProblem requires https: keys fetched over plain http could be
// swapped by anybody on the path, and with them every token accepted.
func jwksURIProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL: " + err.Error()
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "must be an absolute https:// URL"
	case u.User != nil:
		return "must not carry credentials"
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "must use https:// (plain http:// is only allowed for loopback addresses)"
	}
	return ""
}

// jwksProblem checks an inline JSON Web Key Set: a JSON object whose
// "keys" array holds public, asymmetric keys.
func jwksProblem(s string) string {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(s), &set); err != nil {
		return "not a JSON Web Key Set ({\"keys\": [...]}): " + err.Error()
	}
	if len(set.Keys) == 0 {
		return "the \"keys\" array of the JSON Web Key Set is missing or empty"
	}
	for _, k := range set.Keys {
		kty, _ := k["kty"].(string)
		switch {
		case kty == "":
			return "every key needs a \"kty\""
		case kty == "oct":
			return "symmetric keys (kty \"oct\") are not accepted: anybody holding the secret could mint tokens"
		case k["d"] != nil:
			return "holds a private key (member \"d\"); publish only public keys"
		}
	}
	return ""
}

func validateAlgorithms(e *errs, p Path, algs []string) {
	seen := make(map[string]bool, len(algs))
	for i, a := range algs {
		ap := p.Index(i)
		switch {
		case strings.EqualFold(a, "none"):
			e.add(ap, "\"none\" is never accepted: it means an unsigned token")
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			e.add(ap, "%q is symmetric: a shared secret is not acceptable for a multi-tenant issuer (use RS*, PS*, ES* or EdDSA)", a)
		case !contains(JWTAlgorithms, a):
			e.add(ap, "unknown algorithm %q (want one of %s)", a, strings.Join(JWTAlgorithms, ", "))
		case seen[a]:
			e.add(ap, "algorithm %q is listed twice", a)
		}
		seen[a] = true
	}
}

// checkClaimName validates an optional claim name. Claim names may be URIs
// (namespaced claims such as https://example.com/roles) but never blank.
func checkClaimName(e *errs, p Path, claim string) {
	if claim == "" {
		return
	}
	if strings.TrimSpace(claim) == "" || !printable(claim) || strings.ContainsAny(claim, " \t") {
		e.add(p, "%q is not a claim name: must be non-empty, without spaces or control characters", claim)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
