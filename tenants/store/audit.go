package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Audit actions.
const (
	ActionCreate    = "create"
	ActionConfigure = "configure"
	ActionDelete    = "delete"
	ActionRevoke    = "revoke"
)

// KindAPIKey is the kind audit records use for API keys.
const KindAPIKey tenants.Kind = "APIKey"

// AuditRecord is one append-only entry of the audit trail. Records form a
// hash chain: Hash covers the record including PrevHash and KeyID, and Sig
// is the Ed25519 signature of Hash by the audit key (which is not in
// etcd), so an etcd writer can neither edit a record nor rehash the chain
// after it without `audit verify` noticing.
type AuditRecord struct {
	ID   string    `json:"id"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is the writer's authenticated identity (ResolveIdentity):
	// "etcd-user:<name>", "cert:<subject>", or empty when nothing
	// authenticated it.
	Actor string `json:"actor"`
	// Label is what the writer says about itself (--actor, "preload"); it
	// is signed like the rest but was not authenticated.
	Label  string       `json:"label,omitempty"`
	Action string       `json:"action"`
	Kind   tenants.Kind `json:"kind"`
	Name   string       `json:"name"`
	// Tenant is the tenant concerned (the tenant itself or an API key's
	// owner); empty for tiers and the MeshConfig.
	Tenant string `json:"tenant,omitempty"`
	// BeforeDigest and AfterDigest are SHA-256 of the stored value before
	// and after the change; empty when there was none.
	BeforeDigest string `json:"beforeDigest,omitempty"`
	AfterDigest  string `json:"afterDigest,omitempty"`
	// Summary is set on the records retention compaction writes in place
	// of the ones it removed.
	Summary  *AuditSummary `json:"summary,omitempty"`
	PrevHash string        `json:"prevHash"`
	// KeyID names the key that signed the record; empty only on records
	// written before records were signed.
	KeyID string `json:"keyId,omitempty"`
	Hash  string `json:"hash"`
	Sig   string `json:"sig,omitempty"`
}

// auditHead is the value of the audit-head key: the last record of the
// chain. Every audited transaction compares its mod revision, so two
// writers can never both extend the chain from the same record.
type auditHead struct {
	ID   string `json:"id"`
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// computeHash returns the SHA-256 of the record's canonical JSON with
// Hash and Sig empty. Fields added since the first version are omitted
// when empty, so records written before them hash as they did.
func (r AuditRecord) computeHash() (string, error) {
	r.Hash, r.Sig = "", ""
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode audit record %s: %w", r.ID, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// digest is the SHA-256 of a stored value, empty for none.
func digest(v []byte) string {
	if v == nil {
		return ""
	}
	sum := sha256.Sum256(v)
	return hex.EncodeToString(sum[:])
}

// change is what one attempt of a management operation wants to commit:
// the guards that make its reads still valid, its writes, and the audit
// entries describing them.
type change struct {
	cmps   []clientv3.Cmp
	ops    []clientv3.Op
	audits []AuditRecord // Action, Kind, Name, Tenant, digests
}

func (c *change) empty() bool { return len(c.ops) == 0 && len(c.audits) == 0 }

// maxCommitAttempts bounds retries when other writers keep winning.
const maxCommitAttempts = 20

// errContention is returned when the store is too busy to commit.
var errContention = errors.New("the store is changing too fast: gave up after repeated concurrent modifications, try again")

// commit runs attempt against fresh reads until its transaction commits.
// attempt reads what it needs and returns the change with compares that
// fail if those reads are stale; commit appends the signed audit records
// and the chain-head compare, so the change and its audit land together or
// not at all. label is the caller's own name for itself (--actor); the
// actor recorded is the store's authenticated identity. It returns the
// revision of the commit (0 when nothing changed).
func (s *Store) commit(ctx context.Context, label string, attempt func(ctx context.Context) (*change, error)) (int64, error) {
	for i := range maxCommitAttempts {
		ch, err := attempt(ctx)
		if err != nil {
			return 0, err
		}
		if ch == nil || ch.empty() {
			return 0, nil
		}
		key := s.audit.Key
		if key == nil && len(ch.audits) > 0 {
			return 0, fmt.Errorf("%w: nothing was written (an unsigned audit record would fail `audit verify`)", ErrNoAuditKey)
		}
		actor, err := s.audit.actor(ctx)
		if err != nil {
			return 0, err
		}
		headResp, err := s.cli.Get(ctx, s.prefix+auditHeadKey)
		if err != nil {
			return 0, fmt.Errorf("read audit head: %w", err)
		}
		var head auditHead
		var headRev int64
		if len(headResp.Kvs) == 1 {
			headRev = headResp.Kvs[0].ModRevision
			if err := json.Unmarshal(headResp.Kvs[0].Value, &head); err != nil {
				return 0, fmt.Errorf("decode audit head: %w", err)
			}
		}
		ops := ch.ops
		now := s.now().UTC()
		for _, a := range ch.audits {
			a.Seq = head.Seq + 1
			a.ID = fmt.Sprintf("%012d-%s", a.Seq, now.Format("20060102T150405.000000000Z"))
			a.Time = now
			a.Actor = actor
			a.Label = label
			a.PrevHash = head.Hash
			a.KeyID = key.ID()
			if a.Hash, err = a.computeHash(); err != nil {
				return 0, err
			}
			a.Sig = encodeSig(key.sign(recordSigningInput(a.Hash)))
			b, err := json.Marshal(a)
			if err != nil {
				return 0, fmt.Errorf("encode audit record: %w", err)
			}
			ops = append(ops, clientv3.OpPut(s.prefix+auditDir+a.ID, string(b)))
			head = auditHead{ID: a.ID, Seq: a.Seq, Hash: a.Hash}
		}
		if len(ch.audits) > 0 {
			hb, err := json.Marshal(head)
			if err != nil {
				return 0, fmt.Errorf("encode audit head: %w", err)
			}
			ops = append(ops, clientv3.OpPut(s.prefix+auditHeadKey, string(hb)))
		}
		cmps := append(ch.cmps, clientv3.Compare(clientv3.ModRevision(s.prefix+auditHeadKey), "=", headRev))
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("etcd transaction: %w", err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		// Somebody wrote between our reads and the commit. Read again; the
		// attempt reports a conflict if the user pinned a resourceVersion.
		s.log.Debug("transaction lost a race, retrying", "attempt", i+1)
		if err := sleepJitter(ctx, i); err != nil {
			return 0, err
		}
	}
	return 0, errContention
}

// sleepJitter waits a short random time growing with attempt, so
// concurrent writers spread out instead of colliding again.
func sleepJitter(ctx context.Context, attempt int) error {
	maxMs := int64(5 * (attempt + 1))
	n, err := rand.Int(rand.Reader, big.NewInt(maxMs))
	if err != nil {
		return fmt.Errorf("jitter: %w", err)
	}
	t := time.NewTimer(time.Duration(n.Int64()+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// recordSigningInput is what a record's signature covers: its hash,
// under a label of its own so that no other signature made with the key
// (a checkpoint's) can pass for a record's.
func recordSigningInput(hash string) []byte {
	return []byte("tenantmesh audit record v1\n" + hash)
}

// encodeSig is the text form of a signature in records and checkpoints.
func encodeSig(sig []byte) string { return base64.RawURLEncoding.EncodeToString(sig) }
