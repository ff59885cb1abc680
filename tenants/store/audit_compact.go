package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// ActionCompact is the action of a retention summary record.
const ActionCompact = "compact"

// KindAuditSummary is the kind of retention summary records; their name
// is the tenant's.
const KindAuditSummary tenants.Kind = "AuditSummary"

// compactBatch bounds the records one summary replaces: each is a delete
// in the summary's transaction, and etcd refuses transactions of more than
// 128 operations by default.
const compactBatch = 100

// AuditCompaction describes one retention summary: the records of Tenant
// older than Before that it replaces (or would, in a dry run).
type AuditCompaction struct {
	Tenant    string    `json:"tenant"`
	Retention string    `json:"retention"`
	Before    time.Time `json:"before"`
	Count     int       `json:"count"`
	FirstSeq  uint64    `json:"firstSeq"`
	LastSeq   uint64    `json:"lastSeq"`
}

// AuditCompact applies every tenant's spec.audit.retention: the tenant's
// records (its manifest's and its API keys') older than the retention are
// replaced by signed summary records (count, first and last seq, a digest
// of the removed records and their chain links), at most compactBatch per
// summary, so the trail still verifies. It refuses to compact a trail that
// does not verify, which would launder an edited record into a signed
// summary. Tenants without a retention keep their records forever, and so
// do deleted tenants, which no longer have a policy. label is recorded as
// the summaries' label (see commit).
func (s *Store) AuditCompact(ctx context.Context, label string, dryRun bool) ([]AuditCompaction, error) {
	v := newChainVerifier(s.audit.keyring())
	if len(v.ring) == 0 || (!dryRun && s.audit.Key == nil) {
		return nil, fmt.Errorf("%w: compaction verifies the trail and signs its summaries", ErrNoAuditKey)
	}
	out := []AuditCompaction{}
	for {
		var did *AuditCompaction
		_, err := s.commit(ctx, label, func(ctx context.Context) (*change, error) {
			did = nil
			batches, err := s.compactionPlan(ctx, v)
			if err != nil || len(batches) == 0 {
				return nil, err
			}
			if dryRun {
				for _, b := range batches {
					out = append(out, b.info)
				}
				return nil, nil
			}
			did = &batches[0].info
			return batches[0].change(), nil
		})
		if err != nil {
			return out, err
		}
		if did == nil {
			return out, nil
		}
		s.log.Info("audit records compacted", "tenant_id", did.Tenant, "count", did.Count, "first_seq", did.FirstSeq, "last_seq", did.LastSeq, "retention", did.Retention)
		out = append(out, *did)
	}
}

// compactBatchPlan is one summary to write.
type compactBatchPlan struct {
	info AuditCompaction
	recs []storedRecord
}

// change deletes the batch's records and appends their summary.
func (b compactBatchPlan) change() *change {
	ch := &change{}
	for _, r := range b.recs {
		// A concurrent compaction of the same records must fail, or two
		// summaries would account for one record.
		ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(r.key), "=", r.modRev))
		ch.ops = append(ch.ops, clientv3.OpDelete(r.key))
	}
	ch.audits = []AuditRecord{{Action: ActionCompact, Kind: KindAuditSummary, Name: b.info.Tenant, Tenant: b.info.Tenant, Summary: b.summary()}}
	return ch
}

func (b compactBatchPlan) summary() *AuditSummary {
	sum := &AuditSummary{
		Tenant: b.info.Tenant, Retention: b.info.Retention, Before: b.info.Before,
		Count: len(b.recs), FirstSeq: b.info.FirstSeq, LastSeq: b.info.LastSeq,
		Removed: make([]RemovedRecord, len(b.recs)),
	}
	h := sha256.New()
	for i, r := range b.recs {
		h.Write(r.raw)
		h.Write([]byte{'\n'})
		sum.Removed[i] = RemovedRecord{Seq: r.Seq, PrevHash: r.PrevHash, Hash: r.Hash}
	}
	sum.Digest = hex.EncodeToString(h.Sum(nil))
	return sum
}

// compactionPlan verifies the trail and returns the batches of records
// that retention removes, tenant by tenant, oldest first.
func (s *Store) compactionPlan(ctx context.Context, v *chainVerifier) ([]compactBatchPlan, error) {
	policies, err := s.retentionPolicies(ctx)
	if err != nil || len(policies) == 0 {
		return nil, err
	}
	t, err := s.readTrail(ctx, true)
	if err != nil {
		return nil, err
	}
	if _, err := v.verifyTrail(t, nil); err != nil {
		return nil, fmt.Errorf("audit trail does not verify, nothing compacted: %w", err)
	}
	now := s.now().UTC()
	ids := make([]string, 0, len(policies))
	for id := range policies {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []compactBatchPlan
	for _, id := range ids {
		before := now.Add(-policies[id])
		var cur *compactBatchPlan
		for _, r := range t.recs {
			// Summaries are never compacted: they are what is left.
			if r.Tenant != id || r.Summary != nil || !r.Time.Before(before) {
				continue
			}
			if cur == nil || len(cur.recs) == compactBatch {
				out = append(out, compactBatchPlan{info: AuditCompaction{Tenant: id, Retention: policies[id].String(), Before: before, FirstSeq: r.Seq}})
				cur = &out[len(out)-1]
			}
			cur.recs = append(cur.recs, r)
			cur.info.Count, cur.info.LastSeq = len(cur.recs), r.Seq
		}
	}
	return out, nil
}

// retentionPolicies returns the retention of every stored tenant that
// sets one.
func (s *Store) retentionPolicies(ctx context.Context) (map[string]time.Duration, error) {
	objs, err := s.List(ctx, tenants.KindTenant)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, o := range objs {
		t, ok := o.(*tenants.Tenant)
		if !ok || t.Spec.Audit == nil || !t.Spec.Audit.Retention.IsSet() {
			continue
		}
		d, err := t.Spec.Audit.Retention.Parse()
		if err != nil || d <= 0 {
			// Validation refuses such a value; one written by hand keeps
			// the records (forever is the safe reading).
			s.log.Warn("ignoring invalid spec.audit.retention", "tenant_id", t.Metadata.Name, "retention", t.Spec.Audit.Retention)
			continue
		}
		out[t.Metadata.Name] = d
	}
	return out, nil
}
