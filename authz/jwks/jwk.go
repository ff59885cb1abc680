// Package jwks parses JSON Web Key Sets (RFC 7517) into verification keys
// and keeps the key sets of remote issuers fresh without letting request
// traffic turn into a fetch storm against the issuer.
package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MinRSABits is the smallest RSA modulus accepted; shorter keys are
// skipped rather than trusted.
const MinRSABits = 2048

// Key is one verification key of a set.
type Key struct {
	// ID is the JWK "kid" (may be empty).
	ID string
	// Alg is the JWK "alg" when the set pins it; empty means any algorithm
	// that fits the key type.
	Alg string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

// Fits reports whether the key may verify a token signed with alg: the
// key type must be the one the algorithm is defined for (an RSA key never
// verifies an HMAC or ECDSA signature), the curve must match for ECDSA,
// and a JWK that names its alg only verifies that alg.
func (k *Key) Fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// Source yields verification keys. Set (inline key sets) and Remote
// (fetched key sets) implement it.
type Source interface {
	// Keys returns the key with that kid as a one-element slice, or every
	// key when kid is empty. The slice must not be modified.
	Keys(ctx context.Context, kid string) ([]*Key, error)
}

// Errors of a Source. ErrUnavailable means the keys could not be known
// (the issuer never answered); callers must not cache a denial for it.
var (
	ErrUnknownKID  = errors.New("jwks: unknown key id")
	ErrUnavailable = errors.New("jwks: key set unavailable")
)

// Set is an immutable parsed key set.
type Set struct {
	all  []*Key
	byID map[string][]*Key
}

// Keys implements Source.
func (s *Set) Keys(_ context.Context, kid string) ([]*Key, error) {
	if k, ok := s.lookup(kid); ok {
		return k, nil
	}
	return nil, ErrUnknownKID
}

func (s *Set) lookup(kid string) ([]*Key, bool) {
	if kid == "" {
		return s.all, len(s.all) > 0
	}
	k, ok := s.byID[kid]
	return k, ok
}

// Len is the number of usable keys.
func (s *Set) Len() int { return len(s.all) }

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// Parse decodes a JWK Set. Keys that are not signature keys, of an
// unsupported type, or malformed are skipped (one odd key in an IdP's set
// must not make every token of that issuer fail); a set without a single
// usable key is an error, as is a kid that appears twice.
func Parse(data []byte) (*Set, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	s := &Set{byID: make(map[string][]*Key, len(doc.Keys))}
	var skipped []error
	for i, j := range doc.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pub, err := j.publicKey()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		k := &Key{ID: j.Kid, Alg: j.Alg, Public: pub}
		if k.ID != "" {
			if _, dup := s.byID[k.ID]; dup {
				return nil, fmt.Errorf("decode jwks: kid %q appears twice", k.ID)
			}
			s.byID[k.ID] = []*Key{k}
		}
		s.all = append(s.all, k)
	}
	if len(s.all) == 0 {
		return nil, fmt.Errorf("decode jwks: no usable signature key: %w", errors.Join(skipped...))
	}
	return s, nil
}

func (j *jwk) publicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64(j.E, "e")
		if err != nil {
			return nil, err
		}
		if len(e) == 0 || len(e) > 4 {
			return nil, errors.New("rsa exponent out of range")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("rsa modulus of %d bits is shorter than %d", pub.N.BitLen(), MinRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("rsa exponent invalid")
		}
		return pub, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64(j.X, "x")
		if err != nil {
			return nil, err
		}
		y, err := b64(j.Y, "y")
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, errors.New("ec coordinates have the wrong length")
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("ec point: %w", err)
		}
		return pub, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", j.Crv)
		}
		x, err := b64(j.X, "x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("ed25519 key has the wrong length")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", j.Kty)
}

func b64(s, field string) ([]byte, error) {
	// RFC 7518 says unpadded; some IdPs pad anyway.
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", field, err)
	}
	return b, nil
}
