package authz

import (
	"crypto/ed25519"

	"github.com/tenantmesh/tenantmesh/internal/keyfile"
)

// LoadOrCreateSigningKey reads the Ed25519 key that signs x-tenant-context
// from a PEM (PKCS#8) file, creating the file (mode 0600) with a fresh key
// when it does not exist. Replicas that share the file publish the same
// key, so a backend can verify tokens minted by any of them. The kid is
// the key's RFC 7638 thumbprint.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, string, error) {
	key, _, err := keyfile.LoadOrCreate(path, "signing key")
	if err != nil {
		return nil, "", err
	}
	return key, thumbprint(key.Public().(ed25519.PublicKey)), nil
}
