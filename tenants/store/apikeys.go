package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// CreateAPIKey creates an API key for an existing tenant and returns the
// key (shown to the user once, never stored) and its record (only the
// secret's hash). ttl > 0 sets an expiry.
func (s *Store) CreateAPIKey(ctx context.Context, tenant, name string, ttl time.Duration, actor string) (string, *tenants.APIKey, error) {
	tkey, err := s.objectKey(tenants.KindTenant, tenant)
	if err != nil {
		return "", nil, err
	}
	if ttl < 0 {
		return "", nil, fmt.Errorf("api key expiry must be positive, got %s", ttl)
	}
	id, key, err := tenants.NewAPIKey()
	if err != nil {
		return "", nil, err
	}
	_, secret, ok := tenants.ParseAPIKey(key)
	if !ok {
		return "", nil, fmt.Errorf("generated api key does not parse")
	}
	now := s.now().UTC().Truncate(time.Second)
	rec := &tenants.APIKey{ID: id, Tenant: tenant, Name: name, Hash: tenants.HashAPIKeySecret(secret), CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		rec.ExpiresAt = &exp
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return "", nil, fmt.Errorf("encode api key record: %w", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err = s.commit(ctx, actor, func(ctx context.Context) (*change, error) {
		resp, err := s.cli.Get(ctx, tkey)
		if err != nil {
			return nil, fmt.Errorf("read tenant/%s: %w", tenant, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, fmt.Errorf("tenant/%s: %w", tenant, ErrNotFound)
		}
		return &change{
			// The tenant must still exist when the key lands: a key
			// outliving its tenant's delete would be an orphan.
			cmps: []clientv3.Cmp{
				clientv3.Compare(clientv3.CreateRevision(tkey), "=", resp.Kvs[0].CreateRevision),
				clientv3.Compare(clientv3.CreateRevision(s.apiKeyKey(tenant, id)), "=", 0),
			},
			ops:    []clientv3.Op{clientv3.OpPut(s.apiKeyKey(tenant, id), string(value))},
			audits: []AuditRecord{{Action: ActionCreate, Kind: KindAPIKey, Name: id, Tenant: tenant, AfterDigest: digest(value)}},
		}, nil
	})
	if err != nil {
		return "", nil, err
	}
	s.log.Info("api key created", "tenant_id", tenant, "key_id", id, "actor", actor)
	return key, rec, nil
}

func (s *Store) apiKeyKey(tenant, id string) string {
	return s.prefix + apiKeysDir + tenant + "/" + id
}

// ListAPIKeys returns the key records of a tenant, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, tenant string) ([]*tenants.APIKey, error) {
	if err := checkName(tenant); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.prefix+apiKeysDir+tenant+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list api keys of tenant %s: %w", tenant, err)
	}
	out := make([]*tenants.APIKey, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var k tenants.APIKey
		if err := json.Unmarshal(kv.Value, &k); err != nil {
			return nil, fmt.Errorf("api key %s: stored value does not decode: %w", kv.Key, err)
		}
		out = append(out, &k)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// RevokeAPIKey marks a key revoked; it stays listed so the audit trail
// and `apikey list` show it. Revoking a revoked key does nothing.
func (s *Store) RevokeAPIKey(ctx context.Context, tenant, id, actor string) error {
	if err := checkName(tenant); err != nil {
		return err
	}
	if err := checkName(id); err != nil {
		return err
	}
	key := s.apiKeyKey(tenant, id)
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := s.commit(ctx, actor, func(ctx context.Context) (*change, error) {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("read api key %s: %w", id, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, fmt.Errorf("api key %s of tenant %s: %w", id, tenant, ErrNotFound)
		}
		var rec tenants.APIKey
		if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
			return nil, fmt.Errorf("api key %s: stored value does not decode: %w", id, err)
		}
		if rec.Revoked {
			return nil, nil
		}
		rec.Revoked = true
		value, err := json.Marshal(&rec)
		if err != nil {
			return nil, fmt.Errorf("encode api key record: %w", err)
		}
		return &change{
			cmps:   []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)},
			ops:    []clientv3.Op{clientv3.OpPut(key, string(value))},
			audits: []AuditRecord{{Action: ActionRevoke, Kind: KindAPIKey, Name: id, Tenant: tenant, BeforeDigest: digest(resp.Kvs[0].Value), AfterDigest: digest(value)}},
		}, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("api key revoked", "tenant_id", tenant, "key_id", id, "actor", actor)
	return nil
}
