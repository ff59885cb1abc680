package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ExportOptions modify AuditExport.
type ExportOptions struct {
	// Resume, when set, is the last checkpoint a previous export wrote:
	// the trail must still hold it, and only records after it are emitted.
	Resume *Checkpoint
	// Follow keeps exporting new records until ctx ends.
	Follow bool
	// Interval is how often Follow writes a checkpoint when nothing
	// changed (default one minute), so its absence is noticed.
	Interval time.Duration
}

// AuditExport verifies the trail and emits its records and a signed
// checkpoint of its head, then, with Follow, every new record and a
// checkpoint after each change and each Interval. It stops with an error
// when the trail fails verification or no longer holds what was already
// exported (records deleted, audit-head moved back): that is the alarm.
func (s *Store) AuditExport(ctx context.Context, opts ExportOptions, emit func(ExportLine) error) error {
	if s.audit.Key == nil {
		return fmt.Errorf("%w: audit export signs its checkpoints", ErrNoAuditKey)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	ring := s.audit.keyring()
	v := newChainVerifier(ring)
	// Watch before the first read so no change between them is missed.
	var watch clientv3.WatchChan
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Follow {
		watch = s.cli.Watch(wctx, s.prefix+auditHeadKey)
	}
	if opts.Resume != nil {
		if _, err := s.AuditVerifyWith(ctx, VerifyOptions{Keyring: ring, Checkpoint: opts.Resume}); err != nil {
			return fmt.Errorf("the trail no longer matches the last checkpoint exported: %w", err)
		}
	}
	t, err := s.readTrail(ctx, true)
	if err != nil {
		return err
	}
	res, err := v.verifyTrail(t, nil)
	if err != nil {
		return err
	}
	from := uint64(0)
	if opts.Resume != nil {
		from = opts.Resume.Seq
	}
	pos := exportPos{seq: res.HeadSeq, hash: res.HeadHash, id: headID(t.head)}
	if err := s.emitRecords(t.recs, from, pos, emit); err != nil {
		return err
	}
	for opts.Follow {
		tick := time.NewTimer(opts.Interval)
		select {
		case <-ctx.Done():
			tick.Stop()
			return nil
		case _, ok := <-watch:
			if !ok {
				watch = s.cli.Watch(wctx, s.prefix+auditHeadKey)
			}
		case <-tick.C:
		}
		tick.Stop()
		// Bounded, so an etcd that is away is retried at the next tick
		// rather than waited for in silence.
		pctx, pcancel := context.WithTimeout(ctx, opts.Interval+time.Second)
		next, err := s.exportSince(pctx, v, pos, emit)
		pcancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errTrailRead):
			// etcd away is no tampering: try again at the next tick.
			s.log.Warn("audit export: cannot read the trail, retrying", "error", err)
			continue
		case err != nil:
			return err
		}
		pos = next
	}
	return nil
}

// errTrailRead marks a failure to read the trail, as opposed to a trail
// that fails verification.
var errTrailRead = errors.New("read audit trail")

// exportPos is the last record exported.
type exportPos struct {
	seq      uint64
	hash, id string
}

func headID(h *auditHead) string {
	if h == nil {
		return ""
	}
	return h.ID
}

// emitRecords emits the records after seq from and a checkpoint of pos.
func (s *Store) emitRecords(recs []storedRecord, from uint64, pos exportPos, emit func(ExportLine) error) error {
	for i := range recs {
		if recs[i].Seq > from {
			if err := emit(ExportLine{Record: &recs[i].AuditRecord}); err != nil {
				return err
			}
		}
	}
	cp, err := s.newCheckpoint(pos.seq, pos.hash, pos.id)
	if err != nil {
		return err
	}
	return emit(ExportLine{Checkpoint: cp})
}

// exportSince reads the records from pos.seq on, checks that the record
// at pos is still there (or accounted for by a retention summary) and
// that the new ones extend it, and emits them with a checkpoint.
func (s *Store) exportSince(ctx context.Context, v *chainVerifier, pos exportPos, emit func(ExportLine) error) (exportPos, error) {
	start := s.prefix + auditDir + fmt.Sprintf("%012d", pos.seq)
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(start, clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.prefix+auditDir))),
		clientv3.OpGet(s.prefix+auditHeadKey),
	).Commit()
	if err != nil {
		return pos, fmt.Errorf("%w: %w", errTrailRead, err)
	}
	var recs []storedRecord
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		r, err := s.decodeRecord(kv.Key, kv.Value)
		if err != nil {
			return pos, err
		}
		recs = append(recs, storedRecord{AuditRecord: r, key: string(kv.Key), modRev: kv.ModRevision, raw: kv.Value})
	}
	var head *auditHead
	if hk := resp.Responses[1].GetResponseRange().Kvs; len(hk) == 1 {
		head = &auditHead{}
		if err := json.Unmarshal(hk[0].Value, head); err != nil {
			return pos, fmt.Errorf("decode audit head: %w", err)
		}
	}
	if pos.seq > 0 {
		if len(recs) > 0 && recs[0].Seq == pos.seq {
			if recs[0].Hash != pos.hash {
				return pos, fmt.Errorf("audit record %s (seq %d) was exported with hash %s and now has %s: records were deleted and the chain rewritten", recs[0].ID, pos.seq, short(pos.hash), short(recs[0].Hash))
			}
			recs = recs[1:]
		} else if !summarized(recs, pos) {
			return pos, fmt.Errorf("audit record %s (seq %d), already exported, was deleted", pos.id, pos.seq)
		}
	}
	res, err := v.walk(recs, pos.seq, pos.hash, nil)
	if err != nil {
		return pos, err
	}
	if head == nil {
		return pos, fmt.Errorf("audit-head was deleted after seq %d was exported", pos.seq)
	}
	if err := checkHead(head, res); err != nil {
		return pos, err
	}
	next := exportPos{seq: res.HeadSeq, hash: res.HeadHash, id: head.ID}
	return next, s.emitRecords(recs, pos.seq, next, emit)
}

// summarized reports whether a retention summary among recs accounts for
// the record at pos.
func summarized(recs []storedRecord, pos exportPos) bool {
	for _, r := range recs {
		if r.Summary == nil {
			continue
		}
		for _, g := range r.Summary.Removed {
			if g.Seq == pos.seq && g.Hash == pos.hash {
				return true
			}
		}
	}
	return false
}
