package store

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"time"
)

// AuditSummary stands in the chain for the records retention compaction
// removed (audit_compact.go). It is a record of its own, signed like the
// others, so the records after the removed ones still verify.
type AuditSummary struct {
	// Tenant whose records were removed, under the Retention its spec set;
	// every removed record is older than Before.
	Tenant    string    `json:"tenant"`
	Retention string    `json:"retention"`
	Before    time.Time `json:"before"`
	Count     int       `json:"count"`
	FirstSeq  uint64    `json:"firstSeq"`
	LastSeq   uint64    `json:"lastSeq"`
	// Digest is the SHA-256 of the removed records' stored values, each
	// followed by a newline, in sequence order: an export that kept them
	// (`audit export`) can be checked against it.
	Digest string `json:"digest"`
	// Removed keeps each removed record's place in the chain.
	Removed []RemovedRecord `json:"removed"`
}

// RemovedRecord is the chain link of a record retention removed.
type RemovedRecord struct {
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prevHash"`
	Hash     string `json:"hash"`
}

// VerifyOptions modify AuditVerifyWith.
type VerifyOptions struct {
	// Keyring holds the public keys signatures may verify with; nil means
	// the store's (AuditOptions.Key and AuditOptions.Keyring).
	Keyring AuditKeyring
	// Checkpoint, when set, must be part of the trail: its record at its
	// sequence number, and the trail at least that long.
	Checkpoint *Checkpoint
}

// AuditVerification is what a successful verification found.
type AuditVerification struct {
	// Records are the records present; Compacted those retention removed
	// (vouched for by signed summaries); Unsigned the records written
	// before records were signed, bound by the signed ones after them.
	Records   int    `json:"records"`
	Compacted int    `json:"compacted"`
	Unsigned  int    `json:"unsigned"`
	HeadSeq   uint64 `json:"headSeq"`
	HeadHash  string `json:"headHash"`
	// KeyIDs are the keys that signed the records.
	KeyIDs []string `json:"keyIds"`
	// Checkpoint is the checkpoint the trail was checked against.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// AuditVerify checks the whole trail with the store's keys and returns an
// error naming the first record that was edited, re-signed or deleted.
func (s *Store) AuditVerify(ctx context.Context) error {
	_, err := s.AuditVerifyWith(ctx, VerifyOptions{})
	return err
}

// AuditVerifyWith checks the whole trail: every record's hash and
// signature, the chain from the first record to the head, the retention
// summaries standing in for removed records, that a store holding objects
// has a trail at all, and, with opts.Checkpoint, that the trail still
// holds the checkpointed head (a deleted tail or prefix fails).
func (s *Store) AuditVerifyWith(ctx context.Context, opts VerifyOptions) (*AuditVerification, error) {
	ring := opts.Keyring
	if ring == nil {
		ring = s.audit.keyring()
	}
	if len(ring) == 0 {
		return nil, errors.New("no audit public key to verify signatures with: give the audit key file or its public key (--audit-key-file, --audit-public-key)")
	}
	cp := opts.Checkpoint
	if cp != nil {
		if err := cp.verify(ring, s.prefix); err != nil {
			return nil, err
		}
	}
	t, err := s.readTrail(ctx, true)
	if err != nil {
		return nil, err
	}
	v := newChainVerifier(ring)
	var want map[uint64]string
	if cp != nil {
		want = map[uint64]string{cp.Seq: ""}
	}
	res, err := v.verifyTrail(t, want)
	if err != nil {
		return nil, err
	}
	if cp != nil {
		if res.HeadSeq < cp.Seq {
			return nil, fmt.Errorf("the trail ends at seq %d but checkpoint %s has seq %d: records at the end were deleted (and audit-head moved back)", res.HeadSeq, cp.Time.Format(time.RFC3339), cp.Seq)
		}
		if got := want[cp.Seq]; got != cp.Head {
			return nil, fmt.Errorf("the trail's record at seq %d has hash %s but checkpoint %s says %s: records were deleted and the chain rewritten since", cp.Seq, short(got), cp.Time.Format(time.RFC3339), short(cp.Head))
		}
		res.Checkpoint = cp
	}
	return res, nil
}

// verifyTrail checks a whole trail read by readTrail(ctx, true).
func (v *chainVerifier) verifyTrail(t *trail, want map[uint64]string) (*AuditVerification, error) {
	if len(t.recs) == 0 && t.head == nil {
		if t.objects > 0 {
			return nil, fmt.Errorf("the audit trail is empty but the store holds %d audited objects: the trail (the audit/ prefix and audit-head) was deleted", t.objects)
		}
		return &AuditVerification{KeyIDs: []string{}}, nil
	}
	res, err := v.walk(t.recs, 0, "", want)
	if err != nil {
		return nil, err
	}
	if res.Unsigned > 0 && res.Unsigned == res.Records {
		return nil, fmt.Errorf("none of the %d audit records is signed (written before records were signed, or forged): the next audited change signs the chain and binds them", res.Records)
	}
	if err := checkHead(t.head, res); err != nil {
		return nil, err
	}
	return res, nil
}

func checkHead(head *auditHead, res *AuditVerification) error {
	switch {
	case head == nil:
		return fmt.Errorf("audit head is missing but %d records exist", res.Records)
	case head.Seq != res.HeadSeq || head.Hash != res.HeadHash:
		return fmt.Errorf("audit head points at record %s (seq %d) but the last record has seq %d: records at the end were deleted or edited", head.ID, head.Seq, res.HeadSeq)
	}
	return nil
}

// chainVerifier checks records against a keyring. It remembers the hashes
// whose signatures it checked, so a caller that verifies again (each
// compaction batch) pays for hashing only.
type chainVerifier struct {
	ring     AuditKeyring
	verified map[string]bool
}

func newChainVerifier(ring AuditKeyring) *chainVerifier {
	return &chainVerifier{ring: ring, verified: map[string]bool{}}
}

// checkRecord checks a record's own hash and signature; signed is false
// for a record written before records were signed.
func (v *chainVerifier) checkRecord(r *AuditRecord) (signed bool, err error) {
	h, err := r.computeHash()
	if err != nil {
		return false, err
	}
	if h != r.Hash {
		return false, fmt.Errorf("audit record %s: content does not match its hash (record was edited)", r.ID)
	}
	if r.KeyID == "" && r.Sig == "" {
		return false, nil
	}
	if v.verified[r.Hash] {
		return true, nil
	}
	pub, ok := v.ring[r.KeyID]
	if !ok {
		return false, fmt.Errorf("audit record %s: signed with key %q, which is not among the verifying keys %v (a key rotated out needs --audit-public-key)", r.ID, r.KeyID, v.ring.IDs())
	}
	sig, err := base64.RawURLEncoding.DecodeString(r.Sig)
	if err != nil || !ed25519.Verify(pub, recordSigningInput(r.Hash), sig) {
		return false, fmt.Errorf("audit record %s: signature does not verify (the record was rewritten by someone without the audit key)", r.ID)
	}
	v.verified[r.Hash] = true
	return true, nil
}

// walk verifies recs, sorted by seq, as the chain after the record
// (fromSeq, fromHash). Gaps must be covered by the retention summaries
// among recs. want's keys are sequence numbers whose hash walk fills in.
func (v *chainVerifier) walk(recs []storedRecord, fromSeq uint64, fromHash string, want map[uint64]string) (*AuditVerification, error) {
	res := &AuditVerification{HeadSeq: fromSeq, HeadHash: fromHash}
	keys := map[string]bool{}
	removed, err := v.summaries(recs, fromSeq)
	if err != nil {
		return nil, err
	}
	// Records before the first signed one are legacy and bound by its
	// PrevHash; once records are signed, an unsigned one is a forgery
	// that a later writer may have chained onto unknowingly.
	signedSeen := fromSeq > 0
	note := func(seq uint64, hash string) {
		if _, ok := want[seq]; ok {
			want[seq] = hash
		}
		res.HeadSeq, res.HeadHash = seq, hash
	}
	for i := range recs {
		r := &recs[i].AuditRecord
		if r.Seq <= res.HeadSeq {
			return nil, fmt.Errorf("audit record %s: seq %d does not follow seq %d (records reordered or duplicated)", r.ID, r.Seq, res.HeadSeq)
		}
		for seq := res.HeadSeq + 1; seq < r.Seq; seq++ {
			gone, ok := removed[seq]
			if !ok {
				return nil, fmt.Errorf("audit record %s: the record with seq %d before it is missing (deleted: no retention summary accounts for it)", r.ID, seq)
			}
			if gone.PrevHash != res.HeadHash {
				return nil, fmt.Errorf("retention summary for seq %d does not follow seq %d (the chain was rewritten)", seq, res.HeadSeq)
			}
			note(seq, gone.Hash)
			res.Compacted++
		}
		if _, ok := removed[r.Seq]; ok {
			return nil, fmt.Errorf("audit record %s: present, but a retention summary says it was removed", r.ID)
		}
		signed, err := v.checkRecord(r)
		if err != nil {
			return nil, err
		}
		if r.PrevHash != res.HeadHash {
			return nil, fmt.Errorf("audit record %s: does not follow seq %d (its prevHash is not that record's hash: a record between them was deleted or the chain was rewritten)", r.ID, res.HeadSeq)
		}
		switch {
		case signed:
			signedSeen = true
			keys[r.KeyID] = true
		case signedSeen:
			return nil, fmt.Errorf("audit record %s: not signed, but records before it are (forged, or written by a tenantmesh without an audit key)", r.ID)
		default:
			res.Unsigned++
		}
		note(r.Seq, r.Hash)
		res.Records++
	}
	res.KeyIDs = make([]string, 0, len(keys))
	for k := range keys {
		res.KeyIDs = append(res.KeyIDs, k)
	}
	sort.Strings(res.KeyIDs)
	return res, nil
}

// summaries checks the retention summaries among recs and returns the
// chain links they keep, by seq, for seqs after fromSeq.
func (v *chainVerifier) summaries(recs []storedRecord, fromSeq uint64) (map[uint64]RemovedRecord, error) {
	removed := map[uint64]RemovedRecord{}
	by := map[uint64]string{}
	for i := range recs {
		r := &recs[i].AuditRecord
		if r.Summary == nil {
			continue
		}
		// Its links are trusted only once its signature is.
		signed, err := v.checkRecord(r)
		if err != nil {
			return nil, err
		}
		if !signed {
			return nil, fmt.Errorf("audit record %s: a retention summary that is not signed", r.ID)
		}
		sum := r.Summary
		if len(sum.Removed) != sum.Count || sum.Count == 0 || sum.Removed[0].Seq != sum.FirstSeq || sum.Removed[sum.Count-1].Seq != sum.LastSeq || sum.LastSeq >= r.Seq {
			return nil, fmt.Errorf("audit record %s: retention summary is inconsistent (count %d, seq %d..%d)", r.ID, sum.Count, sum.FirstSeq, sum.LastSeq)
		}
		for _, g := range sum.Removed {
			if g.Seq <= fromSeq {
				continue
			}
			if other, dup := by[g.Seq]; dup {
				return nil, fmt.Errorf("audit record %s: seq %d is also accounted for by retention summary %s", r.ID, g.Seq, other)
			}
			by[g.Seq] = r.ID
			removed[g.Seq] = g
		}
	}
	return removed, nil
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
