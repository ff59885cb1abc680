package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// MaxApplyBytes bounds one transaction of an Apply: documents, keys and
// audit records must stay under etcd's default 1.5 MiB request limit.
const MaxApplyBytes = 1536*1024 - 4096

// auditOverheadBytes is a generous size of one document's share of the
// transaction besides its value: its key, compare and audit record.
const auditOverheadBytes = 1024

// ApplyOptions modify Apply.
type ApplyOptions struct {
	// Actor is recorded in the audit trail.
	Actor string
	// DryRun validates and computes the result without writing.
	DryRun bool
	// Atomic writes everything in one transaction or refuses the apply
	// (ErrTooBigForAtomic) when etcd's limits do not allow that. Without
	// it, an apply too big for one transaction is written in several, in
	// dependency order (apply_batch.go).
	Atomic bool
	// Progress, when set, is called after each transaction of a batched
	// apply with the objects written so far and the number to write.
	Progress func(done, total int)
}

// Outcome says what Apply did with one object.
type Outcome string

// Apply outcomes, as kubectl prints them.
const (
	Created    Outcome = "created"
	Configured Outcome = "configured"
	Unchanged  Outcome = "unchanged"
)

// AppliedObject is the outcome for one document.
type AppliedObject struct {
	Kind    tenants.Kind `json:"kind"`
	Name    string       `json:"name"`
	Outcome Outcome      `json:"outcome"`
}

// ApplyResult lists the outcome per document, in input order.
type ApplyResult struct {
	Objects []AppliedObject `json:"objects"`
	// Revision is the etcd revision of the commit; 0 when nothing was
	// written (all unchanged, or a dry run).
	Revision int64 `json:"revision"`
	DryRun   bool  `json:"dryRun,omitempty"`
}

// prepared is a document with its key and canonical value.
type prepared struct {
	doc   tenants.Document
	key   string
	value []byte
}

// applyOne writes docs in one transaction with their audit records: all
// of them or none. limit is the transaction size it checks before
// sending (0: let etcd decide). A document that carries
// metadata.resourceVersion must still be at that revision. Documents
// whose stored value is identical are reported unchanged and not
// written.
// It also returns the size of the transaction it last tried (txnOps).
func (s *Store) applyOne(ctx context.Context, docs []tenants.Document, preps []prepared, opts ApplyOptions, limit int) (*ApplyResult, int, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	res := &ApplyResult{DryRun: opts.DryRun}
	ops := len(preps) + 2 // planApply's read
	rev, err := s.commit(ctx, opts.Actor, func(ctx context.Context) (*change, error) {
		ch, objs, err := s.planApply(ctx, docs, preps, limit)
		if err != nil {
			return nil, err
		}
		if ch != nil {
			ops = max(ops, txnOps(ch))
		}
		res.Objects = objs
		if opts.DryRun {
			return nil, nil
		}
		return ch, nil
	})
	if err != nil {
		return nil, ops, err
	}
	res.Revision = rev
	s.logApplied(res.Objects, opts)
	return res, ops, nil
}

// logApplied logs every object an apply changed.
func (s *Store) logApplied(objs []AppliedObject, opts ApplyOptions) {
	for _, o := range objs {
		if o.Outcome != Unchanged && o.Outcome != "" {
			s.log.Info("applied", objectAttrs(o.Kind, o.Name, "outcome", o.Outcome, "actor", opts.Actor, "dry_run", opts.DryRun)...)
		}
	}
}

// objectAttrs are the log attributes of an object, with tenant_id for
// tenants so every line about a tenant can be found by its id.
func objectAttrs(kind tenants.Kind, name string, more ...any) []any {
	args := []any{"kind", kind, "name", name}
	if kind == tenants.KindTenant {
		args = append(args, "tenant_id", name)
	}
	return append(args, more...)
}

// prepare checks what can be checked without etcd: sizes, duplicates,
// names, and encodes every document.
func (s *Store) prepare(docs []tenants.Document) ([]prepared, error) {
	if len(docs) == 0 {
		return nil, errors.New("no documents to apply")
	}
	var list tenants.ErrorList
	preps := make([]prepared, len(docs))
	seen := map[string]tenants.Document{}
	for i, d := range docs {
		fe := func(path tenants.Path, format string, args ...any) {
			list = append(list, tenants.FieldError{File: d.File, Doc: d.Index, Kind: d.Kind(), Name: d.Name(), Path: path, Cause: fmt.Sprintf(format, args...)})
		}
		if d.Kind() == tenants.KindMeshConfig && d.Name() != tenants.MeshConfigName {
			fe("metadata.name", "the MeshConfig is a singleton and must be named %q", tenants.MeshConfigName)
			continue
		}
		key, err := s.objectKey(d.Kind(), d.Name())
		if err != nil {
			fe("metadata.name", "%v", err)
			continue
		}
		if first, dup := seen[key]; dup {
			fe("metadata.name", "%s %q appears twice (first in %s document %d)", d.Kind(), d.Name(), first.File, first.Index)
			continue
		}
		seen[key] = d
		if rv := d.Object.GetMeta().ResourceVersion; rv != "" {
			if n, err := strconv.ParseInt(rv, 10, 64); err != nil || n < 0 {
				fe("metadata.resourceVersion", "%q is not a revision number", rv)
			}
		}
		v, err := canonical(d.Object)
		if err != nil {
			fe("", "%v", err)
			continue
		}
		if len(v) > tenants.MaxDocumentBytes {
			fe("", "document is %d bytes encoded; etcd accepts at most %d per object (its request limit is 1.5 MiB)", len(v), tenants.MaxDocumentBytes)
		}
		preps[i] = prepared{doc: d, key: key, value: v}
	}
	if err := list.Err(); err != nil {
		return nil, err
	}
	return preps, nil
}

// planApply reads the current state, validates docs against it and builds
// the guarded transaction, refused when it has more than limit operations
// (0: no check here; etcd refuses what exceeds its own).
func (s *Store) planApply(ctx context.Context, docs []tenants.Document, preps []prepared, limit int) (*change, []AppliedObject, error) {
	meshKey := s.prefix + meshConfigDir + tenants.MeshConfigName
	ops := []clientv3.Op{clientv3.OpGet(s.prefix+tiersDir, clientv3.WithPrefix()), clientv3.OpGet(meshKey)}
	const firstDoc = 2 // responses before the documents' own
	for _, p := range preps {
		ops = append(ops, clientv3.OpGet(p.key))
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, nil, fmt.Errorf("read current objects: %w", err)
	}
	tierKVs := map[string]*mvccpb.KeyValue{}
	tiers := tenants.BuiltinTiers()
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		o, err := decodeStored(kv.Value, kv.ModRevision)
		if t, ok := o.(*tenants.Tier); err == nil && ok {
			tiers[t.Metadata.Name] = t
			tierKVs[t.Metadata.Name] = kv
		}
	}
	// The stored MeshConfig reserves platform hosts and issuers. A value
	// that does not decode reserves nothing here; the watch keeps its last
	// good version, and the Catalog rejects what conflicts with that.
	var mesh *tenants.MeshConfig
	var meshRev int64
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
		meshRev = kvs[0].ModRevision
		if o, err := decodeStored(kvs[0].Value, kvs[0].ModRevision); err == nil {
			mesh, _ = o.(*tenants.MeshConfig)
		}
	}
	if err := tenants.ValidateSet(docs, tenants.Stored{Tiers: tiers, Mesh: mesh}); err != nil {
		return nil, nil, err
	}
	meshInSet, meshGuarded := false, false
	for _, p := range preps {
		meshInSet = meshInSet || p.doc.Kind() == tenants.KindMeshConfig
	}

	ch := &change{}
	objs := make([]AppliedObject, len(preps))
	var conflicts tenants.ErrorList
	inSet := map[string]bool{}
	for _, p := range preps {
		if p.doc.Kind() == tenants.KindTier {
			inSet[p.doc.Name()] = true
		}
	}
	guardedTiers := map[string]bool{}
	for i, p := range preps {
		var cur *mvccpb.KeyValue
		if kvs := resp.Responses[i+firstDoc].GetResponseRange().Kvs; len(kvs) == 1 {
			cur = kvs[0]
		}
		var curRev int64
		var curVal []byte
		if cur != nil {
			curRev, curVal = cur.ModRevision, cur.Value
		}
		if rv := p.doc.Object.GetMeta().ResourceVersion; rv != "" && rv != strconv.FormatInt(curRev, 10) {
			now := strconv.FormatInt(curRev, 10)
			if cur == nil {
				now = "deleted"
			}
			conflicts = append(conflicts, tenants.FieldError{
				File: p.doc.File, Doc: p.doc.Index, Kind: p.doc.Kind(), Name: p.doc.Name(),
				Path:  "metadata.resourceVersion",
				Cause: fmt.Sprintf("%s/%s was modified since you read it (resourceVersion %s, now %s): get it again and reapply your change", kindNoun(p.doc.Kind()), p.doc.Name(), rv, now),
			})
			continue
		}
		obj := AppliedObject{Kind: p.doc.Kind(), Name: p.doc.Name(), Outcome: Created}
		if cur != nil {
			obj.Outcome = Configured
			if sameValue(curVal, p.value) {
				obj.Outcome = Unchanged
			}
		}
		objs[i] = obj
		// A tenant that names a stored tier must not race with that
		// tier's deletion (Delete refuses tiers in use).
		if t, ok := p.doc.Object.(*tenants.Tenant); ok && !inSet[t.Spec.Tier] && !guardedTiers[t.Spec.Tier] {
			if kv, stored := tierKVs[t.Spec.Tier]; stored {
				guardedTiers[t.Spec.Tier] = true
				ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
			}
		}
		if obj.Outcome == Unchanged {
			continue
		}
		ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(p.key), "=", curRev))
		ch.ops = append(ch.ops, clientv3.OpPut(p.key, string(p.value)))
		if t, ok := p.doc.Object.(*tenants.Tenant); ok {
			hostConflicts, err := s.hostClaims(ctx, ch, &preps[i].doc, t.Metadata.Name, tenantHosts(curVal), t.Spec.Hosts)
			if err != nil {
				return nil, nil, err
			}
			conflicts = append(conflicts, hostConflicts...)
			issuerConflicts, err := s.issuerClaims(ctx, ch, &preps[i].doc, t.Metadata.Name, tenantIssuers(curVal), t.Spec.Auth.JWT)
			if err != nil {
				return nil, nil, err
			}
			conflicts = append(conflicts, issuerConflicts...)
			// ValidateSet checked the tenant against the MeshConfig read
			// above; it must still be that one when the change commits.
			if !meshInSet && !meshGuarded && (len(t.Spec.Hosts) > 0 || len(t.Spec.Auth.JWT) > 0) {
				meshGuarded = true
				ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(meshKey), "=", meshRev))
			}
		}
		rec := AuditRecord{Action: ActionCreate, Kind: p.doc.Kind(), Name: p.doc.Name(), BeforeDigest: digest(curVal), AfterDigest: digest(p.value)}
		if obj.Outcome == Configured {
			rec.Action = ActionConfigure
		}
		if p.doc.Kind() == tenants.KindTenant {
			rec.Tenant = p.doc.Name()
		}
		ch.audits = append(ch.audits, rec)
	}
	if err := conflicts.Err(); err != nil {
		return nil, nil, err
	}
	if len(ch.ops) == 0 {
		return nil, objs, nil
	}
	if limit > 0 {
		if n := txnOps(ch); n > limit {
			return nil, nil, fmt.Errorf("this change needs %d operations in one etcd transaction, more than etcd's limit of %d: %w", n, limit, errTxnTooBig)
		}
	}
	return ch, objs, nil
}
