package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/tenantmesh/tenantmesh/internal/keyfile"
)

// Audit records and checkpoints are signed with Ed25519 rather than
// MACed: whoever verifies (an auditor, a compliance job) then needs only
// the public key and cannot forge a record; with HMAC every verifier could.
// The private key never goes to etcd, so an etcd writer that rewrites a
// record cannot sign it again.

// AuditKeyFileName is the name of the audit signing key in serve's data
// directory, beside the x-tenant-context key.
const AuditKeyFileName = "audit-signing-key.pem"

// ErrNoAuditKey is returned (wrapped) by a write of a Store that has no
// audit signing key: it would write a record `audit verify` rejects.
var ErrNoAuditKey = errors.New("no audit signing key")

// AuditKey is the Ed25519 key that signs audit records and checkpoints.
type AuditKey struct {
	priv ed25519.PrivateKey
	id   string
}

// ID is the key id records carry: the first 16 hex digits of the SHA-256
// of the public key.
func (k *AuditKey) ID() string { return k.id }

// Public returns the verifying half of the key.
func (k *AuditKey) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// sign signs msg.
func (k *AuditKey) sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// PublicPEM returns the public key as a PEM "PUBLIC KEY" block, the form
// --audit-public-key reads (and openssl), after a comment line with the
// key id; PEM readers skip text outside the block.
func (k *AuditKey) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, fmt.Errorf("encode audit public key: %w", err)
	}
	return append([]byte("# tenantmesh audit key id "+k.id+"\n"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...), nil
}

func newAuditKey(priv ed25519.PrivateKey) *AuditKey {
	return &AuditKey{priv: priv, id: auditKeyID(priv.Public().(ed25519.PublicKey))}
}

func auditKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateAuditKey returns a fresh key that lives only in memory (tests,
// embedders that keep keys elsewhere).
func GenerateAuditKey() (*AuditKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	return newAuditKey(priv), nil
}

// LoadAuditKey reads an Ed25519 private key from a PEM (PKCS#8 "PRIVATE
// KEY") file, as `openssl genpkey -algorithm ed25519` writes it.
func LoadAuditKey(path string) (*AuditKey, error) {
	priv, err := keyfile.Load(path, "audit key")
	if err != nil {
		return nil, err
	}
	return newAuditKey(priv), nil
}

// LoadOrCreateAuditKey reads the key at path, creating the file (mode
// 0600) with a fresh key when it does not exist. Replicas must share the
// file: records signed by a key the verifier does not hold fail.
func LoadOrCreateAuditKey(path string) (key *AuditKey, created bool, err error) {
	priv, created, err := keyfile.LoadOrCreate(path, "audit key")
	if err != nil {
		return nil, false, err
	}
	return newAuditKey(priv), created, nil
}

// AuditKeyring holds the public keys verification accepts, by key id:
// the current key and the keys it replaced (rotation).
type AuditKeyring map[string]ed25519.PublicKey

// Add puts pub into the ring.
func (r AuditKeyring) Add(pub ed25519.PublicKey) { r[auditKeyID(pub)] = pub }

// IDs returns the key ids, sorted.
func (r AuditKeyring) IDs() []string {
	ids := make([]string, 0, len(r))
	for id := range r {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// LoadAuditPublicKeys adds every key of a PEM file to the ring: "PUBLIC
// KEY" blocks (what `tenantmesh audit public-key` prints) and "PRIVATE
// KEY" blocks (a key file itself). One file may hold several blocks.
func (r AuditKeyring) LoadAuditPublicKeys(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read audit public keys: %w", err)
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var k any
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "PRIVATE KEY":
			var priv any
			if priv, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
				if ed, ok := priv.(ed25519.PrivateKey); ok {
					k = ed.Public()
				} else {
					k = priv
				}
			}
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("audit public keys %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("audit public keys %s: %T is not an Ed25519 key", path, k)
		}
		r.Add(pub)
		n++
	}
	if n == 0 {
		return fmt.Errorf("audit public keys %s: no PEM \"PUBLIC KEY\" or \"PRIVATE KEY\" block", path)
	}
	return nil
}

// AuditOptions configure how a Store signs and verifies its audit trail.
type AuditOptions struct {
	// Key signs the records the store writes. Without it every audited
	// write fails with ErrNoAuditKey.
	Key *AuditKey
	// Keyring holds further public keys verification accepts (keys that
	// were rotated out); Key's own public key is always accepted.
	Keyring AuditKeyring
	// Identity is who the store's etcd client is authenticated as (see
	// ResolveIdentity): the actor of every record it writes. Empty means
	// no authenticated identity; the caller's label is then all there is.
	Identity string
	// IdentityFrom, when set and Identity is empty, gives the identity at
	// the first audited write instead.
	IdentityFrom *IdentityResolver
}

// actor is the identity recorded as the actor of the records written.
func (o AuditOptions) actor(ctx context.Context) (string, error) {
	if o.Identity == "" && o.IdentityFrom != nil {
		id, err := o.IdentityFrom.Identity(ctx)
		if err != nil {
			return "", fmt.Errorf("audit actor: %w", err)
		}
		return id, nil
	}
	return o.Identity, nil
}

// keyring returns the keys verification accepts.
func (o AuditOptions) keyring() AuditKeyring {
	r := AuditKeyring{}
	for id, k := range o.Keyring {
		r[id] = k
	}
	if o.Key != nil {
		r.Add(o.Key.Public())
	}
	return r
}
