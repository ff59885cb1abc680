package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// An apply of any size: everything is validated against one snapshot of
// the store before the first write; then, when the change does not fit
// one transaction, it is written in several, in dependency order (tiers,
// the MeshConfig and shared services before the tenants that name
// them). Each transaction carries whole objects with their audit records
// and host and issuer claims, guarded by the revisions it read, so an
// interrupted apply leaves whole objects behind and running it again
// reports them unchanged.

// BatchTxnOps is the transaction size a batched apply tries first, and
// the --max-txn-ops of serve's embedded etcd (controlplane). Against an
// etcd with a lower limit the apply falls back to DefaultTxnOps.
const BatchTxnOps = 1024

// DefaultTxnOps is etcd's default limit of operations per transaction
// (embed.DefaultMaxTxnOps): every etcd accepts transactions this big.
const DefaultTxnOps = maxTxnOps

// errTxnTooBig is planApply's refusal of a change over its limit.
var errTxnTooBig = errors.New("too many operations for one transaction")

// ErrTooBigForAtomic is returned (wrapped) when an --atomic apply does not
// fit one etcd transaction.
var ErrTooBigForAtomic = errors.New("too big for one transaction")

// txnOps is how many operations etcd counts for ch once commit has added
// the audit records, the audit head and its compare: etcd limits the
// compares and the writes of a transaction separately (checkTxnReqs).
func txnOps(ch *change) int {
	return max(len(ch.cmps)+1, len(ch.ops)+len(ch.audits)+1)
}

// snapshot is the state an apply is validated against, read at one
// revision.
type snapshot struct {
	objects map[string]*mvccpb.KeyValue // by key, kinds the apply touches
	claims  map[string]*mvccpb.KeyValue // host and issuer claims by key
	tiers   map[string]*tenants.Tier
	tierKVs map[string]*mvccpb.KeyValue
	mesh    *tenants.MeshConfig
}

// readSnapshot reads, in one transaction, the directories of the kinds
// in preps, the tiers, the MeshConfig and every claim. Whole directories
// rather than keys: one read of 10,000 keys would exceed etcd's limit.
func (s *Store) readSnapshot(ctx context.Context, preps []prepared) (*snapshot, error) {
	dirs := []string{tiersDir, meshConfigDir, hostsDir, issuersDir}
	for _, p := range preps {
		d, err := kindDir(p.doc.Kind())
		if err != nil {
			return nil, err
		}
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	ops := make([]clientv3.Op, len(dirs))
	for i, d := range dirs {
		ops[i] = clientv3.OpGet(s.prefix+d, clientv3.WithPrefix())
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read current objects: %w", err)
	}
	snap := &snapshot{objects: map[string]*mvccpb.KeyValue{}, claims: map[string]*mvccpb.KeyValue{},
		tiers: tenants.BuiltinTiers(), tierKVs: map[string]*mvccpb.KeyValue{}}
	for i, d := range dirs {
		for _, kv := range resp.Responses[i].GetResponseRange().Kvs {
			switch d {
			case hostsDir, issuersDir:
				snap.claims[string(kv.Key)] = kv
				continue
			case tiersDir:
				o, err := decodeStored(kv.Value, kv.ModRevision)
				if t, ok := o.(*tenants.Tier); err == nil && ok {
					snap.tiers[t.Metadata.Name] = t
					snap.tierKVs[t.Metadata.Name] = kv
				}
			case meshConfigDir:
				// As in planApply: a value that does not decode reserves
				// nothing.
				if string(kv.Key) == s.prefix+meshConfigDir+tenants.MeshConfigName {
					if o, err := decodeStored(kv.Value, kv.ModRevision); err == nil {
						snap.mesh, _ = o.(*tenants.MeshConfig)
					}
				}
			}
			snap.objects[string(kv.Key)] = kv
		}
	}
	return snap, nil
}

// planned is one document's outcome against the snapshot and an upper
// bound of what writing it costs in a transaction.
type planned struct {
	obj   AppliedObject
	ops   int // writes besides the audit head
	cmps  int // compares besides the audit head's and the MeshConfig's
	bytes int
}

// precheck validates every document against the snapshot, as planApply
// does for one transaction: the set's rules, pinned resourceVersions and
// host and issuer claims held by other tenants. Nothing is written.
func (s *Store) precheck(docs []tenants.Document, preps []prepared, snap *snapshot) ([]planned, error) {
	if err := tenants.ValidateSet(docs, tenants.Stored{Tiers: snap.tiers, Mesh: snap.mesh}); err != nil {
		return nil, err
	}
	out := make([]planned, len(preps))
	var conflicts tenants.ErrorList
	for i, p := range preps {
		fe := func(path tenants.Path, cause string) {
			conflicts = append(conflicts, tenants.FieldError{File: p.doc.File, Doc: p.doc.Index, Kind: p.doc.Kind(), Name: p.doc.Name(), Path: path, Cause: cause})
		}
		cur := snap.objects[p.key]
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
			fe("metadata.resourceVersion", fmt.Sprintf("%s/%s was modified since you read it (resourceVersion %s, now %s): get it again and reapply your change", kindNoun(p.doc.Kind()), p.doc.Name(), rv, now))
			continue
		}
		pl := planned{obj: AppliedObject{Kind: p.doc.Kind(), Name: p.doc.Name(), Outcome: Created}}
		if cur != nil {
			pl.obj.Outcome = Configured
			if sameValue(curVal, p.value) {
				pl.obj.Outcome = Unchanged
			}
		}
		// The object's put, compare and audit record; a tenant's tier
		// guard.
		pl.ops, pl.cmps, pl.bytes = 2, 2, len(p.value)+auditOverheadBytes
		if t, ok := p.doc.Object.(*tenants.Tenant); ok && pl.obj.Outcome != Unchanged {
			for j, h := range t.Spec.Hosts {
				if kv := snap.claims[s.hostKey(h)]; kv != nil && string(kv.Value) != t.Metadata.Name {
					fe(tenants.Path("spec.hosts").Index(j), fmt.Sprintf("host %q already belongs to tenant %q", h, kv.Value))
				}
			}
			for j, jw := range t.Spec.Auth.JWT {
				kv := snap.claims[s.issuerKey(jw.Issuer)]
				if kv == nil {
					continue
				}
				var c issuerClaim
				if err := json.Unmarshal(kv.Value, &c); err != nil {
					return nil, fmt.Errorf("issuer claim %s does not decode (written by hand?): %w", kv.Key, err)
				}
				others := slices.DeleteFunc(slices.Clone(c.Tenants), func(x string) bool { return x == t.Metadata.Name })
				if msg := tenants.IssuerClaimProblem(jw.Issuer, jw.Shared, others, c.Shared); msg != "" {
					fe(tenants.Path("spec.auth.jwt").Index(j).Child("issuer"), msg)
				}
			}
			// Claims taken and released: each a write and a compare.
			n := len(t.Spec.Hosts) + len(tenantHosts(curVal)) + len(t.Spec.Auth.JWT) + len(tenantIssuers(curVal))
			pl.ops += n
			pl.cmps += n
			pl.bytes += n * 256
		}
		out[i] = pl
	}
	if err := conflicts.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// applyClass orders the writes of a batched apply: what tenants name
// first.
func applyClass(k tenants.Kind) int {
	switch k {
	case tenants.KindTier:
		return 0
	case tenants.KindMeshConfig:
		return 1
	case tenants.KindSharedService:
		return 2
	}
	return 3
}

// Apply validates docs and writes them with their audit records. When
// the change fits one etcd transaction (or opts.Atomic), it is all or
// nothing; otherwise it is written in as many transactions as etcd's
// limits need, after every document was validated, in dependency order.
// A document that carries metadata.resourceVersion must still be at that
// revision. Documents whose stored value is identical are reported
// unchanged and not written, so an interrupted apply can be run again.
func (s *Store) Apply(ctx context.Context, docs []tenants.Document, opts ApplyOptions) (*ApplyResult, error) {
	preps, err := s.prepare(docs)
	if err != nil {
		return nil, err
	}
	size := 0
	for _, p := range preps {
		size += len(p.value) + auditOverheadBytes
	}
	if opts.Atomic && size > MaxApplyBytes {
		return nil, fmt.Errorf("--atomic: the documents and their audit records are about %d bytes, more than one transaction carries (%d; etcd's default request limit is 1.5 MiB): nothing was written; apply without --atomic to write them in several transactions: %w", size, MaxApplyBytes, ErrTooBigForAtomic)
	}
	// A small apply is one transaction planned from reads of its own
	// keys: no snapshot of whole directories, which costs as much as the
	// store is big.
	if len(preps)+2 <= DefaultTxnOps && size <= MaxApplyBytes {
		if opts.Atomic {
			return s.applyAtomic(ctx, docs, preps, opts, 0)
		}
		res, _, err := s.applyOne(ctx, docs, preps, opts, DefaultTxnOps)
		if !errors.Is(err, errTxnTooBig) {
			return res, err
		}
		// Many hosts or issuers: write it in several transactions.
	}
	rctx, cancel := withTimeout(ctx)
	snap, err := s.readSnapshot(rctx, preps)
	cancel()
	if err != nil {
		return nil, err
	}
	plans, err := s.precheck(docs, preps, snap)
	if err != nil {
		return nil, err
	}
	if opts.Atomic {
		ops, cmps := 1, 2 // audit head; its compare and the MeshConfig's
		for _, pl := range plans {
			if pl.obj.Outcome != Unchanged {
				ops, cmps = ops+pl.ops, cmps+pl.cmps
			}
		}
		// Reading the documents back costs one operation each as well.
		return s.applyAtomic(ctx, docs, preps, opts, max(ops, cmps, len(preps)+2))
	}
	res := &ApplyResult{DryRun: opts.DryRun, Objects: make([]AppliedObject, len(plans))}
	changed := 0
	for i, pl := range plans {
		res.Objects[i] = pl.obj
		if pl.obj.Outcome != Unchanged {
			changed++
		}
	}
	if opts.DryRun || changed == 0 {
		return res, nil
	}
	if err := s.applyBatches(ctx, docs, preps, plans, opts, res, changed); err != nil {
		return nil, err
	}
	s.logApplied(res.Objects, opts)
	return res, nil
}

// applyAtomic is applyOne with etcd deciding the size, and a refusal that
// says how big the transaction is (estimate: precheck's upper bound, 0 if
// unknown) and what to do.
func (s *Store) applyAtomic(ctx context.Context, docs []tenants.Document, preps []prepared, opts ApplyOptions, estimate int) (*ApplyResult, error) {
	res, ops, err := s.applyOne(ctx, docs, preps, opts, 0)
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
		return nil, fmt.Errorf("--atomic: this apply needs %d operations in one etcd transaction and etcd refused it (%v; etcd's default --max-txn-ops is %d, serve's embedded etcd allows %d): nothing was written; apply without --atomic to write it in several transactions: %w", max(ops, estimate), err, DefaultTxnOps, BatchTxnOps, ErrTooBigForAtomic)
	}
	return res, err
}

// applyBatches writes the changed documents in groups that fit a
// transaction, class by class, updating res with each group's outcome.
func (s *Store) applyBatches(ctx context.Context, docs []tenants.Document, preps []prepared, plans []planned, opts ApplyOptions, res *ApplyResult, total int) error {
	var order []int
	for i, pl := range plans {
		if pl.obj.Outcome != Unchanged {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return applyClass(preps[a].doc.Kind()) - applyClass(preps[b].doc.Kind()) })
	limit, maxBytes := BatchTxnOps, MaxApplyBytes
	done := 0
	for len(order) > 0 {
		n := groupSize(order, preps, plans, limit, maxBytes)
		group := order[:n]
		gdocs := make([]tenants.Document, n)
		gpreps := make([]prepared, n)
		for j, i := range group {
			gdocs[j], gpreps[j] = docs[i], preps[i]
		}
		var objs []AppliedObject
		gctx, cancel := withTimeout(ctx)
		rev, err := s.commit(gctx, opts.Actor, func(ctx context.Context) (*change, error) {
			ch, o, err := s.planApply(ctx, gdocs, gpreps, limit)
			objs = o
			return ch, err
		})
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrTooManyOps) && limit > DefaultTxnOps:
			// This etcd keeps its default limit: regroup for it.
			s.log.Debug("etcd refused a transaction of this size, using its default limit", "ops", limit, "error", err)
			limit = DefaultTxnOps
			continue
		case errors.Is(err, rpctypes.ErrRequestTooLarge) && n > 1:
			maxBytes /= 2
			continue
		case err != nil:
			return fmt.Errorf("%d of %d changed objects were written, the rest were not (each object is whole, with its audit record): run the same apply again to finish: %w", done, total, err)
		}
		for j, i := range group {
			res.Objects[i] = objs[j]
		}
		res.Revision = max(res.Revision, rev)
		done += n
		order = order[n:]
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	return nil
}

// groupSize is how many of the next documents in order (all of one class
// at most, so that a class is stored before the next is written) fit one
// transaction of limit operations and maxBytes; at least one.
func groupSize(order []int, preps []prepared, plans []planned, limit, maxBytes int) int {
	ops, cmps, size := 1, 2, 0
	class := applyClass(preps[order[0]].doc.Kind())
	for n, i := range order {
		pl := plans[i]
		// planApply also reads each document back in one transaction.
		if n > 0 && (applyClass(preps[i].doc.Kind()) != class || ops+pl.ops > limit || cmps+pl.cmps > limit || n+3 > limit || size+pl.bytes > maxBytes) {
			return n
		}
		ops, cmps, size = ops+pl.ops, cmps+pl.cmps, size+pl.bytes
	}
	return len(order)
}
