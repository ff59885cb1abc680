package authz

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateSigningKey reads the Ed25519 key that signs x-tenant-context
// from a PEM (PKCS#8) file, creating the file (mode 0600) with a fresh key
// when it does not exist. Replicas that share the file publish the same
// key, so a backend can verify tokens minted by any of them. The kid is
// the key's RFC 7638 thumbprint.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, string, error) {
	key, err := readSigningKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createSigningKey(path)
		if errors.Is(err, fs.ErrExist) {
			// Another replica created it between our read and create.
			key, err = readSigningKey(path)
		}
	}
	if err != nil {
		return nil, "", err
	}
	return key, thumbprint(key.Public().(ed25519.PublicKey)), nil
}

func readSigningKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: no PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not an Ed25519 key", path, k)
	}
	return ed, nil
}

func createSigningKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create signing key dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		// Leave no half-written key behind for the next start to choke on.
		if rmErr := os.Remove(path); rmErr != nil {
			werr = errors.Join(werr, rmErr)
		}
		return nil, fmt.Errorf("write signing key %s: %w", path, werr)
	}
	return key, nil
}
