package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Tenant states recorded in status/<tenant>.
const (
	// StateAccepted: the tenant's current value is in the Catalog.
	StateAccepted = "accepted"
	// StateRejected: the value is valid alone but conflicts with other
	// tenants (a host taken, an unknown tier) or Envoy refused it.
	StateRejected = "rejected"
	// StateInvalid: the stored value does not decode or validate; the
	// tenant keeps its last good version.
	StateInvalid = "invalid"
)

// Status is what the control plane last concluded about a tenant.
type Status struct {
	Tenant string `json:"tenant"`
	// State is StateAccepted, StateRejected or StateInvalid.
	State string `json:"state"`
	// Revision is the mod revision of the tenant value the state is about.
	Revision int64     `json:"revision"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
}

// sameExceptTime reports whether two statuses say the same thing.
func (st Status) sameExceptTime(o Status) bool {
	st.Time, o.Time = time.Time{}, time.Time{}
	return st == o
}

// WriteStatus records a tenant's status. It does not write when only the
// time would change, so replicas and restarts do not churn etcd.
func (s *Store) WriteStatus(ctx context.Context, st Status) error {
	if err := checkName(st.Tenant); err != nil {
		return err
	}
	cur, err := s.GetStatus(ctx, st.Tenant)
	if err != nil {
		return err
	}
	if cur != nil && cur.sameExceptTime(st) {
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
func (s *Store) GetStatus(ctx context.Context, tenant string) (*Status, error) {
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
	var st Status
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return nil, fmt.Errorf("status of tenant %s does not decode: %w", tenant, err)
	}
	return &st, nil
}

// ListStatuses returns every recorded tenant status by tenant id. Values
// that do not decode are left out; the watch rewrites them.
func (s *Store) ListStatuses(ctx context.Context) (map[string]Status, error) {
	resp, err := s.cli.Get(ctx, s.prefix+statusDir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list statuses: %w", err)
	}
	out := make(map[string]Status, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st Status
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			s.log.Warn("status does not decode", "key", string(kv.Key), "error", err)
			continue
		}
		out[st.Tenant] = st
	}
	return out, nil
}
