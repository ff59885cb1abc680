package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// storedRecord is an audit record with what etcd knows about its key.
type storedRecord struct {
	AuditRecord
	key    string
	modRev int64
	raw    []byte
}

// trail is the audit trail read at one revision.
type trail struct {
	recs []storedRecord
	head *auditHead
	// objects counts the stored objects the trail should account for
	// (manifests and API keys); only set by readTrail(ctx, true).
	objects int64
}

// auditedDirs are the key directories whose every write is audited.
var auditedDirs = []string{tenantsDir, tiersDir, meshConfigDir, sharedDir, apiKeysDir}

// readTrail reads every record (in key order, which is chain order) and
// the head, at one revision; with counts, also how many audited objects
// the store holds.
func (s *Store) readTrail(ctx context.Context, counts bool) (*trail, error) {
	ops := []clientv3.Op{
		clientv3.OpGet(s.prefix+auditDir, clientv3.WithPrefix()),
		clientv3.OpGet(s.prefix + auditHeadKey),
	}
	if counts {
		for _, d := range auditedDirs {
			ops = append(ops, clientv3.OpGet(s.prefix+d, clientv3.WithPrefix(), clientv3.WithCountOnly()))
		}
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	t := &trail{recs: make([]storedRecord, 0, len(kvs))}
	for _, kv := range kvs {
		r, err := s.decodeRecord(kv.Key, kv.Value)
		if err != nil {
			return nil, err
		}
		t.recs = append(t.recs, storedRecord{AuditRecord: r, key: string(kv.Key), modRev: kv.ModRevision, raw: kv.Value})
	}
	if hk := resp.Responses[1].GetResponseRange().Kvs; len(hk) == 1 {
		t.head = &auditHead{}
		if err := json.Unmarshal(hk[0].Value, t.head); err != nil {
			return nil, fmt.Errorf("decode audit head: %w", err)
		}
	}
	for _, r := range resp.Responses[2:] {
		t.objects += r.GetResponseRange().Count
	}
	return t, nil
}

// decodeRecord decodes one stored record and checks it sits at its own key.
func (s *Store) decodeRecord(key, value []byte) (AuditRecord, error) {
	var r AuditRecord
	id := strings.TrimPrefix(string(key), s.prefix+auditDir)
	if err := json.Unmarshal(value, &r); err != nil {
		return r, fmt.Errorf("audit record %s: cannot decode: %w", id, err)
	}
	if r.ID != id {
		return r, fmt.Errorf("audit record %s: id field says %q (record moved or edited)", id, r.ID)
	}
	return r, nil
}

// AuditList returns the audit records, oldest first; with tenant set, only
// those concerning that tenant (its manifest and its API keys). It does
// not verify them: see AuditVerify.
func (s *Store) AuditList(ctx context.Context, tenant string) ([]AuditRecord, error) {
	t, err := s.readTrail(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]AuditRecord, 0, len(t.recs))
	for _, r := range t.recs {
		if tenant == "" || r.Tenant == tenant {
			out = append(out, r.AuditRecord)
		}
	}
	return out, nil
}
