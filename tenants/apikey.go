package tenants

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// API keys look like "tmk_<id>_<secret>": the id lets authz find the one
// stored record (no scan, no timing oracle over other keys); only the
// SHA-256 of the secret is stored and compared in constant time.
const apiKeyPrefix = "tmk_"

// NewAPIKey returns a fresh key id and the full key to hand to the user.
func NewAPIKey() (id, key string, err error) {
	var idb [9]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", fmt.Errorf("generate api key id: %w", err)
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return "", "", fmt.Errorf("generate api key secret: %w", err)
	}
	id = hex.EncodeToString(idb[:])
	key = apiKeyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(sec[:])
	return id, key, nil
}

// ParseAPIKey splits a key into id and secret; ok is false for anything
// that is not shaped like a tenantmesh key.
func ParseAPIKey(key string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(key, apiKeyPrefix)
	if !found || len(key) > 256 {
		return "", "", false
	}
	id, secret, found = strings.Cut(rest, "_")
	if !found || len(id) != 18 || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

// HashAPIKeySecret is the stored form of a key's secret.
func HashAPIKeySecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
