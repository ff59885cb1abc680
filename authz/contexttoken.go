package authz

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/tenantmesh/tenantmesh/contract"
)

// The x-tenant-context token: a compact JWS (EdDSA) the control plane
// signs on every allow, so backends can trust the tenant without trusting
// whoever set a header. Backends verify it with the keys published by
// JWKSHandler and must check iss, aud (their tenant) and exp.
const (
	// ContextTokenIssuer is the iss of every x-tenant-context token.
	ContextTokenIssuer = contract.ContextTokenIssuer
	// ContextTokenLifetime is how long a minted token is valid.
	ContextTokenLifetime = 60 * time.Second
	// contextTokenMinRemaining is how much lifetime a cached token must have
	// left to be handed out again; below it a fresh one is minted so that
	// a backend never receives a token about to expire in flight.
	contextTokenMinRemaining = 30 * time.Second
)

// ContextClaims are the claims of an x-tenant-context token.
type ContextClaims struct {
	Issuer   string   `json:"iss"`
	Audience string   `json:"aud"`
	Subject  string   `json:"sub,omitempty"`
	TenantID string   `json:"tenant_id"`
	Tier     string   `json:"tier"`
	Features []string `json:"features"`
	Roles    []string `json:"roles"`
	IssuedAt int64    `json:"iat"`
	Expires  int64    `json:"exp"`
	ID       string   `json:"jti"`
}

// contextSigner mints x-tenant-context tokens. The JWS header never
// changes, so it is encoded once.
type contextSigner struct {
	key    ed25519.PrivateKey
	kid    string
	header string
	jwks   []byte
}

func newContextSigner(key ed25519.PrivateKey, kid string) (*contextSigner, error) {
	if kid == "" {
		kid = thumbprint(key.Public().(ed25519.PublicKey))
	}
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{"EdDSA", kid, "JWT"})
	if err != nil {
		return nil, fmt.Errorf("encode context token header: %w", err)
	}
	set, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
		"x": base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
	}}})
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return &contextSigner{key: key, kid: kid, header: base64.RawURLEncoding.EncodeToString(hdr), jwks: set}, nil
}

// mint signs claims after stamping iss, iat, exp and a fresh jti.
func (s *contextSigner) mint(c ContextClaims, now time.Time) (token string, exp time.Time, err error) {
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("context token jti: %w", err)
	}
	exp = now.Add(ContextTokenLifetime)
	c.Issuer = ContextTokenIssuer
	c.IssuedAt = now.Unix()
	c.Expires = exp.Unix()
	c.ID = base64.RawURLEncoding.EncodeToString(jti[:])
	if c.Features == nil {
		c.Features = []string{}
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode context claims: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(ed25519.SignatureSize))
	buf = append(buf, s.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig := ed25519.Sign(s.key, buf)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), exp, nil
}

// ServeHTTP publishes the verification key as a JWK Set.
func (s *contextSigner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	if r.Method == http.MethodHead {
		return
	}
	// A failed write means the client went away; nothing to do about it.
	_, _ = w.Write(s.jwks)
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 key: a kid
// that is stable for the key and the same on every replica that shares it.
func thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
