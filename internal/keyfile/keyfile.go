// Package keyfile reads and creates the Ed25519 private keys tenantmesh
// keeps in PEM files outside etcd: the key that signs x-tenant-context and
// the key that signs audit records. Replicas share such a file, so creation
// is exclusive and a replica that loses the race reads the winner's key.
package keyfile

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

// Load reads an Ed25519 private key from a PEM (PKCS#8 "PRIVATE KEY") file,
// as `openssl genpkey -algorithm ed25519` writes it. what names the key in
// errors ("signing key", "audit key").
func Load(path, what string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s %s: no PEM \"PRIVATE KEY\" block", what, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s %s: %T is not an Ed25519 key", what, path, k)
	}
	return ed, nil
}

// LoadOrCreate reads the key at path, creating the file (mode 0600, its
// directory 0700) with a fresh key when it does not exist. created says
// whether this call wrote it.
func LoadOrCreate(path, what string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = Load(path, what)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate %s: %w", what, err)
	}
	if err := write(path, what, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another replica created it between our read and create.
			key, err = Load(path, what)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

func write(path, what string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s dir: %w", what, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
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
		return fmt.Errorf("write %s %s: %w", what, path, werr)
	}
	return nil
}
