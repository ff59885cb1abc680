package store

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Host claims: hosts/<host> holds the id of the tenant that owns the host.
// Every apply that adds a host creates its claim in the same transaction
// (only if absent), so two tenants can never both be stored with one host
// and a tenant's later, unrelated update cannot lose its host to a tenant
// that tried to take it. Values written by hand into etcd bypass claims;
// the Catalog then leaves the conflicting tenant out.
const hostsDir = "hosts/"

// maxTxnOps is etcd's default limit of operations per transaction.
const maxTxnOps = 128

func (s *Store) hostKey(host string) string { return s.prefix + hostsDir + strings.ToLower(host) }

// tenantHosts returns the hosts of a stored tenant value; a value that
// does not decode has none.
func tenantHosts(value []byte) []string {
	if value == nil {
		return nil
	}
	o, err := tenants.DecodeObject(value)
	if err != nil {
		return nil
	}
	if t, ok := o.(*tenants.Tenant); ok {
		return t.Spec.Hosts
	}
	return nil
}

// hostClaims adds to ch what moving tenant id from the hosts in before
// to the hosts in after takes: new claims created, claims of dropped
// hosts released. A host claimed by another tenant is a conflict,
// reported at its field path in doc.
func (s *Store) hostClaims(ctx context.Context, ch *change, doc *tenants.Document, id string, before, after []string) (tenants.ErrorList, error) {
	keep := map[string]bool{}
	for _, h := range after {
		keep[strings.ToLower(h)] = true
	}
	var keys []string
	for _, h := range after {
		keys = append(keys, s.hostKey(h))
	}
	for _, h := range before {
		if !keep[strings.ToLower(h)] {
			keys = append(keys, s.hostKey(h))
		}
	}
	claims, err := s.readKeys(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read host claims of tenant %s: %w", id, err)
	}
	var conflicts tenants.ErrorList
	for i, h := range after {
		k := s.hostKey(h)
		kv := claims[k]
		switch {
		case kv == nil:
			ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
			ch.ops = append(ch.ops, clientv3.OpPut(k, id))
		case string(kv.Value) == id:
			ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
		default:
			fe := tenants.FieldError{Kind: tenants.KindTenant, Name: id, Path: tenants.Path("spec.hosts").Index(i),
				Cause: fmt.Sprintf("host %q already belongs to tenant %q", h, kv.Value)}
			if doc != nil {
				fe.File, fe.Doc = doc.File, doc.Index
			}
			conflicts = append(conflicts, fe)
		}
	}
	for _, h := range before {
		k := s.hostKey(h)
		if kv := claims[k]; !keep[strings.ToLower(h)] && kv != nil && string(kv.Value) == id {
			ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
			ch.ops = append(ch.ops, clientv3.OpDelete(k))
		}
	}
	return conflicts, nil
}

// readKeys reads keys at one revision; absent keys map to nil.
func (s *Store) readKeys(ctx context.Context, keys []string) (map[string]*mvccpb.KeyValue, error) {
	out := make(map[string]*mvccpb.KeyValue, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			out[string(kv.Key)] = kv
		}
	}
	return out, nil
}
