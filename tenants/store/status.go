package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// sameExceptTime reports whether two statuses say the same thing.
func sameExceptTime(a, b tenants.Status) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

// WriteStatus records a tenant's status. It does not write when only the
// time would change, so replicas and restarts do not churn etcd.
func (s *Store) WriteStatus(ctx context.Context, st tenants.Status) error {
	if err := checkName(st.Tenant); err != nil {
		return err
	}
	cur, err := s.GetStatus(ctx, st.Tenant)
	if err != nil {
		return err
	}
	if cur != nil && sameExceptTime(*cur, st) {
		return nil
	}
	if st.Time.IsZero() {
		st.Time = s.now().UTC()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode status of tenant %s: %w", st.Tenant, err)
	}
	if _, err := s.cli.Put(ctx, s.prefix+statusDir+st.Tenant, string(b)); err != nil {
		return fmt.Errorf("write status of tenant %s: %w", st.Tenant, err)
	}
	return nil
}

// GetStatus returns a tenant's status, or nil when none was written.
func (s *Store) GetStatus(ctx context.Context, tenant string) (*tenants.Status, error) {
	if err := checkName(tenant); err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.prefix+statusDir+tenant)
	if err != nil {
		return nil, fmt.Errorf("read status of tenant %s: %w", tenant, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var st tenants.Status
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return nil, fmt.Errorf("status of tenant %s does not decode: %w", tenant, err)
	}
	return &st, nil
}

// ListStatuses returns every recorded tenant status by tenant id. Values
// that do not decode are left out; the watch rewrites them.
func (s *Store) ListStatuses(ctx context.Context) (map[string]tenants.Status, error) {
	resp, err := s.cli.Get(ctx, s.prefix+statusDir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list statuses: %w", err)
	}
	out := make(map[string]tenants.Status, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st tenants.Status
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			s.log.Warn("status does not decode", "key", string(kv.Key), "error", err)
			continue
		}
		out[st.Tenant] = st
	}
	return out, nil
}
