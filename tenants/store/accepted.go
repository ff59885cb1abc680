package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// acceptedDir holds, per tenant, the last version every proxy it was sent
// to accepted (the xDS server writes it, docs/xds.md#nacks). The watch
// ignores it: it is no input of the Catalog.
const acceptedDir = "accepted/"

// acceptedRecord is the value of accepted/<tenant>.
type acceptedRecord struct {
	// Revision is the mod revision of tenants/<id> whose value was
	// accepted (its resourceVersion).
	Revision int64     `json:"revision"`
	Time     time.Time `json:"time"`
	// Tenant is the version as the xDS server translated it (defaulted),
	// in canonical JSON.
	Tenant json.RawMessage `json:"tenant"`
}

// WriteAccepted records t, a tenant version every proxy it was sent to
// accepted, as accepted/<id>: after a restart the xDS server rolls a
// NACKed tenant back to it. It writes only while tenants/<id> is the
// object t is a version of (created at or before t's revision), so a
// late write cannot outlive a delete or leak into a new tenant of the
// same name; it reports whether it wrote.
func (s *Store) WriteAccepted(ctx context.Context, t *tenants.Tenant) (bool, error) {
	id := t.Metadata.Name
	if err := checkName(id); err != nil {
		return false, err
	}
	rev, err := strconv.ParseInt(t.Metadata.ResourceVersion, 10, 64)
	if err != nil || rev <= 0 {
		return false, fmt.Errorf("accepted version of tenant %s: resourceVersion %q is not an etcd revision", id, t.Metadata.ResourceVersion)
	}
	raw, err := canonical(t)
	if err != nil {
		return false, err
	}
	b, err := json.Marshal(acceptedRecord{Revision: rev, Time: s.now().UTC(), Tenant: raw})
	if err != nil {
		return false, fmt.Errorf("encode accepted version of tenant %s: %w", id, err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	key := s.prefix + tenantsDir + id
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(key), ">", 0),
		clientv3.Compare(clientv3.CreateRevision(key), "<", rev+1),
	).Then(clientv3.OpPut(s.prefix+acceptedDir+id, string(b))).Commit()
	if err != nil {
		return false, fmt.Errorf("write accepted version of tenant %s: %w", id, err)
	}
	return resp.Succeeded, nil
}

// ListAccepted returns every recorded accepted version by tenant id, as
// stored (not admitted by a Catalog), with its revision as
// resourceVersion. Values that do not decode are left out and logged.
func (s *Store) ListAccepted(ctx context.Context) (map[string]*tenants.Tenant, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+acceptedDir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list accepted tenant versions: %w", err)
	}
	out := make(map[string]*tenants.Tenant, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), s.prefix+acceptedDir)
		t, err := decodeAccepted(id, kv.Value)
		if err != nil {
			s.log.Warn("accepted tenant version does not decode; ignoring it", "tenant_id", id, "key", string(kv.Key), "error", err)
			continue
		}
		out[id] = t
	}
	return out, nil
}

func decodeAccepted(id string, value []byte) (*tenants.Tenant, error) {
	var rec acceptedRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	o, err := decodeStored(rec.Tenant, rec.Revision)
	if err != nil {
		return nil, fmt.Errorf("decode tenant: %w", err)
	}
	t, ok := o.(*tenants.Tenant)
	if !ok || t.Metadata.Name != id {
		return nil, fmt.Errorf("key accepted/%s does not hold Tenant %q", id, id)
	}
	return t, nil
}
