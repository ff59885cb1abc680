package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tenantmesh/tenantmesh/authz/jwks"
	"github.com/tenantmesh/tenantmesh/tenants"
)

const (
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second
	// maxTokenBytes bounds what we try to parse; real tokens are far
	// smaller, and `Bearer` + 10k dots must not cost more than a length check.
	maxTokenBytes = 16 << 10
)

// asymmetricAlgs are the only algorithms an issuer may pin. HS* would let
// anybody who knows the (public) verification key mint tokens, and none
// is no signature at all; both are dropped from any config.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// issuerOptions are shared by every issuer of a Server.
type issuerOptions struct {
	now func() time.Time
}

// issuer verifies the tokens of one trusted issuer.
type issuer struct {
	cfg tenants.JWTIssuer
	// tenant owning this issuer; "" for a platform issuer (any tenant).
	tenant  string
	methods []string
	parser  *jwt.Parser
	keys    jwks.Source
	// keysErr is set when an inline key set does not parse: every token
	// of the issuer is then invalid, the other issuers are unaffected.
	keysErr error
}

func newIssuer(cfg tenants.JWTIssuer, tenant string, ks keySources, o *issuerOptions, log *slog.Logger) *issuer {
	is := &issuer{cfg: cfg, tenant: tenant}
	for _, a := range cfg.Algorithms {
		if slices.Contains(asymmetricAlgs, a) {
			is.methods = append(is.methods, a)
		} else {
			log.Warn("ignoring JWT algorithm that is not an asymmetric signature", "alg", a)
		}
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(is.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithLeeway(Leeway),
		// golang-jwt v5 checks iat only when asked; a token issued in the
		// future (beyond the leeway) is not valid yet, like one whose nbf is.
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(o.now),
		// Canonical base64 only: no two spellings of one signature.
		jwt.WithStrictDecoding(),
	}
	if len(cfg.Audiences) > 0 {
		// Any one of the listed audiences is enough.
		popts = append(popts, jwt.WithAudience(cfg.Audiences...))
	}
	is.parser = jwt.NewParser(popts...)
	switch {
	case cfg.JWKS != "":
		set, err := jwks.Parse([]byte(cfg.JWKS))
		if err != nil {
			is.keysErr = fmt.Errorf("inline jwks of issuer %s: %w", cfg.Issuer, err)
			log.Error("inline jwks does not parse; tokens of this issuer are denied", "error", err)
		} else {
			is.keys = set
		}
	case cfg.JWKSURI != "":
		is.keys = ks.remote(cfg.JWKSURI)
	default:
		is.keysErr = fmt.Errorf("issuer %s has neither jwks nor jwksUri", cfg.Issuer)
		log.Error("issuer has no keys; tokens of this issuer are denied")
	}
	return is
}

// principal is a verified credential: who the caller is, before any
// per-request rule. It is what the decision cache remembers.
type principal struct {
	tenant  string
	subject string
	roles   []string
	issuer  string // "" for an API key
	expires time.Time
}

// tokenPeek is the part of a token read before verification, only to find
// the issuer config (and hence the keys and algorithms) to verify it with.
type tokenPeek struct {
	alg, iss string
}

func peekToken(raw string) (tokenPeek, error) {
	var p tokenPeek
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return p, errors.New("not a compact JWS")
	}
	c, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return p, errors.New("not a compact JWS")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if err := decodeSegment(h, &hdr); err != nil {
		return p, fmt.Errorf("header: %w", err)
	}
	if err := decodeSegment(c, &claims); err != nil {
		return p, fmt.Errorf("claims: %w", err)
	}
	return tokenPeek{alg: hdr.Alg, iss: claims.Iss}, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// errKeyType: the issuer has keys, but none of a type the token's alg fits.
var errKeyType = errors.New("no key of the issuer fits the token's algorithm")

// verifyJWT verifies raw for a request on a route of tenant te. On failure
// it returns the reason and the error for the log.
func (idx *index) verifyJWT(ctx context.Context, te *tenantEntry, raw string) (*principal, Reason, error) {
	if len(raw) > maxTokenBytes {
		return nil, ReasonInvalidToken, fmt.Errorf("token of %d bytes", len(raw))
	}
	peek, err := peekToken(raw)
	if err != nil {
		return nil, ReasonInvalidToken, err
	}
	is, ok := idx.issuerFor(te, peek.iss)
	if !ok {
		return nil, ReasonUntrustedIssuer, fmt.Errorf("issuer %q is not trusted here", clip(peek.iss))
	}
	if !slices.Contains(is.methods, peek.alg) {
		return nil, ReasonAlgNotAllowed, fmt.Errorf("alg %q not allowed for issuer %s", clip(peek.alg), is.cfg.Issuer)
	}
	if is.keysErr != nil {
		return nil, ReasonIssuerUnavailable, is.keysErr
	}
	var keyErr error
	tok, err := is.parser.Parse(raw, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := is.keys.Keys(ctx, kid)
		if err != nil {
			keyErr = err
			return nil, err
		}
		alg := t.Method.Alg()
		var fit []jwt.VerificationKey
		for _, k := range keys {
			if k.Fits(alg) {
				fit = append(fit, k.Public)
			}
		}
		switch len(fit) {
		case 0:
			keyErr = errKeyType
			return nil, errKeyType
		case 1:
			return fit[0], nil
		}
		return jwt.VerificationKeySet{Keys: fit}, nil
	})
	if err != nil {
		return nil, jwtReason(err, keyErr), err
	}
	claims, ok := tok.Claims.(jwt.MapClaims)
	if !ok {
		return nil, ReasonInvalidToken, fmt.Errorf("unexpected claims type %T", tok.Claims)
	}
	tenant, _ := claims[is.cfg.TenantClaim].(string)
	if tenant == "" {
		return nil, ReasonMissingTenantClaim, fmt.Errorf("claim %q missing or not a string", is.cfg.TenantClaim)
	}
	if is.tenant != "" && tenant != is.tenant {
		return nil, ReasonIssuerTenantMismatch, fmt.Errorf("issuer of tenant %s claims tenant %s", is.tenant, tenant)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		// Unreachable after WithExpirationRequired; kept so a library
		// change cannot turn into a token that never expires in our cache.
		return nil, ReasonInvalidToken, fmt.Errorf("exp: %w", err)
	}
	sub, _ := claims["sub"].(string)
	return &principal{
		tenant:  tenant,
		subject: sub,
		roles:   rolesOf(claims[is.cfg.RolesClaim]),
		issuer:  is.cfg.Issuer,
		expires: exp.Time,
	}, ReasonOK, nil
}

// jwtReason maps a verification error to a reason. Key lookup errors come
// first: an unavailable issuer must read as such, never as a bad token.
func jwtReason(err, keyErr error) Reason {
	switch {
	case errors.Is(keyErr, jwks.ErrUnavailable), errors.Is(keyErr, context.DeadlineExceeded),
		errors.Is(keyErr, context.Canceled):
		return ReasonIssuerUnavailable
	case errors.Is(keyErr, jwks.ErrUnknownKID):
		return ReasonUnknownKey
	case keyErr != nil:
		return ReasonInvalidToken
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonInvalidAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonUntrustedIssuer
	}
	return ReasonInvalidToken
}

// rolesOf reads a roles claim: an array of strings or one space-separated
// string (the OAuth "scope" style). Anything else yields no roles.
func rolesOf(v any) []string {
	switch r := v.(type) {
	case string:
		return strings.Fields(r)
	case []any:
		out := make([]string, 0, len(r))
		for _, x := range r {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
