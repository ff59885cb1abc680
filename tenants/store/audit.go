package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
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
// hash chain: Hash covers the record including PrevHash, so editing or
// deleting any record breaks the chain at that point.
type AuditRecord struct {
	ID     string       `json:"id"`
	Seq    uint64       `json:"seq"`
	Time   time.Time    `json:"time"`
	Actor  string       `json:"actor"`
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
	PrevHash     string `json:"prevHash"`
	Hash         string `json:"hash"`
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
// Hash empty.
func (r AuditRecord) computeHash() (string, error) {
	r.Hash = ""
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
// fail if those reads are stale; commit appends the audit records and the
// chain-head compare, so the change and its audit land together or not at
// all. It returns the revision of the commit (0 when nothing changed).
func (s *Store) commit(ctx context.Context, actor string, attempt func(ctx context.Context) (*change, error)) (int64, error) {
	for i := range maxCommitAttempts {
		ch, err := attempt(ctx)
		if err != nil {
			return 0, err
		}
		if ch == nil || ch.empty() {
			return 0, nil
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
			a.PrevHash = head.Hash
			if a.Hash, err = a.computeHash(); err != nil {
				return 0, err
			}
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

// AuditList returns the audit records, oldest first; with tenant set, only
// those concerning that tenant (its manifest and its API keys).
func (s *Store) AuditList(ctx context.Context, tenant string) ([]AuditRecord, error) {
	recs, _, err := s.readAudit(ctx)
	if err != nil {
		return nil, err
	}
	if tenant == "" {
		return recs, nil
	}
	var out []AuditRecord
	for _, r := range recs {
		if r.Tenant == tenant {
			out = append(out, r)
		}
	}
	return out, nil
}

// readAudit reads every record (in key order, which is chain order) and
// the head, at one revision.
func (s *Store) readAudit(ctx context.Context) ([]AuditRecord, *auditHead, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.prefix+auditDir, clientv3.WithPrefix()),
		clientv3.OpGet(s.prefix+auditHeadKey),
	).Commit()
	if err != nil {
		return nil, nil, fmt.Errorf("read audit trail: %w", err)
	}
	recs := resp.Responses[0].GetResponseRange().Kvs
	out := make([]AuditRecord, 0, len(recs))
	for _, kv := range recs {
		var r AuditRecord
		id := strings.TrimPrefix(string(kv.Key), s.prefix+auditDir)
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, nil, fmt.Errorf("audit record %s: cannot decode: %w", id, err)
		}
		if r.ID != id {
			return nil, nil, fmt.Errorf("audit record %s: id field says %q", id, r.ID)
		}
		out = append(out, r)
	}
	var head *auditHead
	if hk := resp.Responses[1].GetResponseRange().Kvs; len(hk) == 1 {
		head = &auditHead{}
		if err := json.Unmarshal(hk[0].Value, head); err != nil {
			return nil, nil, fmt.Errorf("decode audit head: %w", err)
		}
	}
	return out, head, nil
}

// AuditVerify checks the whole chain and returns an error naming the first
// record that was edited, or the place where records were deleted.
func (s *Store) AuditVerify(ctx context.Context) error {
	recs, head, err := s.readAudit(ctx)
	if err != nil {
		return err
	}
	prevHash, prevID, prevSeq := "", "(start)", uint64(0)
	for _, r := range recs {
		h, err := r.computeHash()
		if err != nil {
			return err
		}
		if h != r.Hash {
			return fmt.Errorf("audit record %s: content does not match its hash (record was edited)", r.ID)
		}
		if r.Seq != prevSeq+1 || r.PrevHash != prevHash {
			return fmt.Errorf("audit record %s: does not follow %s (seq %d after %d; a record between them was deleted or the chain was rewritten)", r.ID, prevID, r.Seq, prevSeq)
		}
		prevHash, prevID, prevSeq = r.Hash, r.ID, r.Seq
	}
	switch {
	case head == nil && len(recs) > 0:
		return fmt.Errorf("audit head is missing but %d records exist", len(recs))
	case head != nil && (head.Seq != prevSeq || head.Hash != prevHash):
		return fmt.Errorf("audit head points at record %s (seq %d) but the last record is %s (seq %d): records at the end were deleted or edited", head.ID, head.Seq, prevID, prevSeq)
	}
	return nil
}
