package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Get returns one stored object with ResourceVersion set to its etcd mod
// revision. A missing object is an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, kind tenants.Kind, name string) (tenants.Object, error) {
	key, err := s.objectKey(kind, name)
	if err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", kindNoun(kind), name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%s/%s: %w", kindNoun(kind), name, ErrNotFound)
	}
	kv := resp.Kvs[0]
	o, err := decodeStored(kv.Value, kv.ModRevision)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: stored value is invalid: %w", kindNoun(kind), name, err)
	}
	return o, nil
}

// List returns every stored object of a kind, sorted by name. Values that
// no longer decode (written by hand) are logged and left out, so one bad
// value does not hide the others.
func (s *Store) List(ctx context.Context, kind tenants.Kind) ([]tenants.Object, error) {
	dir, err := kindDir(kind)
	if err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.prefix+dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kindNoun(kind), err)
	}
	out := make([]tenants.Object, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.prefix+dir)
		o, err := decodeStored(kv.Value, kv.ModRevision)
		if err != nil {
			s.log.Warn("skipping stored value that does not decode", objectAttrs(kind, name, "error", err)...)
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// ErrInUse is returned (wrapped) when deleting a tier tenants still name.
var ErrInUse = errors.New("in use")

// Delete removes an object with an audit record. Deleting a tenant also
// deletes its API keys, status and accepted version; deleting a tier that tenants still
// name is refused.
func (s *Store) Delete(ctx context.Context, kind tenants.Kind, name string, actor string) error {
	key, err := s.objectKey(kind, name)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err = s.commit(ctx, actor, func(ctx context.Context) (*change, error) {
		ops := []clientv3.Op{clientv3.OpGet(key)}
		if kind == tenants.KindTier {
			ops = append(ops, clientv3.OpGet(s.prefix+tenantsDir, clientv3.WithPrefix()))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", kindNoun(kind), name, err)
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return nil, fmt.Errorf("%s/%s: %w", kindNoun(kind), name, ErrNotFound)
		}
		cur := kvs[0]
		ch := &change{
			cmps: []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", cur.ModRevision)},
			ops:  []clientv3.Op{clientv3.OpDelete(key)},
		}
		rec := AuditRecord{Action: ActionDelete, Kind: kind, Name: name, BeforeDigest: digest(cur.Value)}
		switch kind {
		case tenants.KindTenant:
			rec.Tenant = name
			ch.ops = append(ch.ops,
				clientv3.OpDelete(s.prefix+apiKeysDir+name+"/", clientv3.WithPrefix()),
				clientv3.OpDelete(s.prefix+statusDir+name),
				clientv3.OpDelete(s.prefix+acceptedDir+name))
			// Release the tenant's hosts; nobody else can hold their claims.
			if _, err := s.hostClaims(ctx, ch, nil, name, tenantHosts(cur.Value), nil); err != nil {
				return nil, err
			}
			// And its issuers; other sharers keep theirs.
			if _, err := s.issuerClaims(ctx, ch, nil, name, tenantIssuers(cur.Value), nil); err != nil {
				return nil, err
			}
		case tenants.KindTier:
			users := tenantsNaming(resp.Responses[1].GetResponseRange().Kvs, name)
			if len(users) > 0 {
				return nil, fmt.Errorf("tier/%s is %w by tenant(s) %s: move them to another tier first", name, ErrInUse, strings.Join(users, ", "))
			}
			// No tenant may start naming the tier between our read and
			// the delete: every tenant write raises the range's revision.
			ch.cmps = append(ch.cmps, clientv3.Compare(clientv3.ModRevision(s.prefix+tenantsDir).WithPrefix(), "<", resp.Header.Revision+1))
		}
		ch.audits = []AuditRecord{rec}
		return ch, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("deleted", objectAttrs(kind, name, "actor", actor)...)
	return nil
}

// tenantsNaming returns the ids of stored tenants whose spec.tier is tier.
// A value that does not decode names no tier.
func tenantsNaming(kvs []*mvccpb.KeyValue, tier string) []string {
	var out []string
	for _, kv := range kvs {
		o, err := tenants.DecodeObject(kv.Value)
		if err != nil {
			continue
		}
		if t, ok := o.(*tenants.Tenant); ok && t.Spec.Tier == tier {
			out = append(out, t.Metadata.Name)
		}
	}
	return out
}

// Count returns how many objects of a kind are stored, without reading
// them.
func (s *Store) Count(ctx context.Context, kind tenants.Kind) (int64, error) {
	dir, err := kindDir(kind)
	if err != nil {
		return 0, err
	}
	resp, err := s.cli.Get(ctx, s.prefix+dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", kindNoun(kind), err)
	}
	return resp.Count, nil
}
