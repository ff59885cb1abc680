package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// keyValue is the part of an etcd key-value the state needs.
type keyValue struct {
	key    string
	value  []byte
	modRev int64
}

// tenantEntry is the stored value of one tenant key.
type tenantEntry struct {
	modRev int64
	// obj is the decoded value (nil when it does not decode). Reused
	// while modRev is unchanged so the Catalog can share its tenant.
	obj *tenants.Tenant
	// err says why the value is not usable: decode or validation errors.
	err error
	// decodeErr: err is about decoding (or the key), so re-validating
	// against new tiers cannot fix it.
	decodeErr bool
}

// catalogState is what Watch knows about etcd: the decoded objects by key,
// the last good version of every tenant, and the statuses it last saw.
// It is owned by the Watch goroutine.
type catalogState struct {
	s        *Store
	rev      int64
	tenants  map[string]*tenantEntry
	lastGood map[string]*tenants.Tenant
	// tiers and mesh hold the last good value of each; tierRevs the mod
	// revision last decoded, so a bad value is reported once.
	tiers    map[string]*tenants.Tier
	tierRevs map[string]int64
	mesh     *tenants.MeshConfig
	meshRev  int64
	apiKeys  map[string]*tenants.APIKey // by key below apikeys/
	// shared holds the last good SharedService by name, sharedRevs the
	// mod revision last decoded (see shared.go).
	shared     map[string]*tenants.SharedService
	sharedRevs map[string]int64
	statuses   map[string]tenants.Status
	prev       *tenants.Catalog
	// tiersChanged asks build to re-validate tenants against new tiers.
	tiersChanged bool
}

func newCatalogState(s *Store) *catalogState {
	return &catalogState{
		s:        s,
		tenants:  map[string]*tenantEntry{},
		lastGood: map[string]*tenants.Tenant{},
		tiers:    map[string]*tenants.Tier{},
		tierRevs: map[string]int64{},
		apiKeys:  map[string]*tenants.APIKey{},
		statuses: map[string]tenants.Status{},

		shared:     map[string]*tenants.SharedService{},
		sharedRevs: map[string]int64{},
	}
}

// reset replaces the state with a full read at revision rev, keeping the
// decoded objects of keys whose mod revision did not change.
func (c *catalogState) reset(kvs []keyValue, rev int64) {
	seen := map[string]bool{}
	for _, kv := range kvs {
		seen[kv.key] = true
	}
	c.forEachKnownKey(func(key string) {
		if !seen[key] {
			c.del(key)
		}
	})
	for _, kv := range kvs {
		c.put(kv)
	}
	c.rev = rev
}

// forEachKnownKey calls fn with the full key of every object held.
func (c *catalogState) forEachKnownKey(fn func(string)) {
	p := c.s.prefix
	var keys []string
	for id := range c.tenants {
		keys = append(keys, p+tenantsDir+id)
	}
	for name := range c.tierRevs {
		keys = append(keys, p+tiersDir+name)
	}
	if c.meshRev != 0 {
		keys = append(keys, p+meshConfigDir+tenants.MeshConfigName)
	}
	for k := range c.apiKeys {
		keys = append(keys, p+apiKeysDir+k)
	}
	for name := range c.sharedRevs {
		keys = append(keys, p+sharedDir+name)
	}
	for t := range c.statuses {
		keys = append(keys, p+statusDir+t)
	}
	for _, k := range keys {
		fn(k)
	}
}

// apply applies watch events and reports whether anything the Catalog is
// built from changed (audit and status writes do not).
func (c *catalogState) apply(events []*clientv3.Event) bool {
	changed := false
	for _, ev := range events {
		key := string(ev.Kv.Key)
		if ev.Type == clientv3.EventTypeDelete {
			changed = c.del(key) || changed
		} else {
			changed = c.put(keyValue{key: key, value: ev.Kv.Value, modRev: ev.Kv.ModRevision}) || changed
		}
		c.rev = max(c.rev, ev.Kv.ModRevision)
	}
	return changed
}

// put records one stored value; it reports whether the Catalog input
// changed.
func (c *catalogState) put(kv keyValue) bool {
	rel, ok := strings.CutPrefix(kv.key, c.s.prefix)
	if !ok {
		return false
	}
	dir, name, _ := strings.Cut(rel, "/")
	switch dir + "/" {
	case tenantsDir:
		if e, ok := c.tenants[name]; ok && e.modRev == kv.modRev {
			return false
		}
		c.tenants[name] = c.decodeTenant(name, kv)
		return true
	case tiersDir:
		return c.putTier(name, kv)
	case meshConfigDir:
		return c.putMesh(name, kv)
	case sharedDir:
		return c.putShared(name, kv)
	case apiKeysDir:
		var k tenants.APIKey
		if err := json.Unmarshal(kv.value, &k); err != nil || k.ID == "" {
			tenant, _, _ := strings.Cut(name, "/")
			c.s.metrics.invalidValues.WithLabelValues(string(KindAPIKey)).Inc()
			c.s.log.Warn("stored api key does not decode; ignoring it", "tenant_id", tenant, "key", kv.key, "error", err)
			delete(c.apiKeys, name)
			return true
		}
		c.apiKeys[name] = &k
		return true
	case statusDir:
		var st tenants.Status
		if err := json.Unmarshal(kv.value, &st); err == nil {
			c.statuses[name] = st
		} else {
			// An unreadable status is rewritten by the next build that
			// has something to say about the tenant.
			delete(c.statuses, name)
		}
		return false
	}
	return false
}

// del forgets a deleted key; it reports whether the Catalog input changed.
func (c *catalogState) del(key string) bool {
	rel, ok := strings.CutPrefix(key, c.s.prefix)
	if !ok {
		return false
	}
	dir, name, _ := strings.Cut(rel, "/")
	switch dir + "/" {
	case tenantsDir:
		delete(c.tenants, name)
		delete(c.lastGood, name)
		return true
	case tiersDir:
		delete(c.tiers, name)
		delete(c.tierRevs, name)
		c.tiersChanged = true
		return true
	case meshConfigDir:
		c.mesh, c.meshRev = nil, 0
		return true
	case sharedDir:
		return c.delShared(name)
	case apiKeysDir:
		delete(c.apiKeys, name)
		return true
	case statusDir:
		delete(c.statuses, name)
	}
	return false
}

// decodeTenant decodes and validates a tenant value. The error is kept;
// build decides whether to fall back to the last good version.
func (c *catalogState) decodeTenant(id string, kv keyValue) *tenantEntry {
	e := &tenantEntry{modRev: kv.modRev}
	defer func() {
		if e.err != nil {
			c.reportInvalid(id, e)
		}
	}()
	o, err := decodeStored(kv.value, kv.modRev)
	if err != nil {
		e.err, e.decodeErr = err, true
		return e
	}
	t, ok := o.(*tenants.Tenant)
	switch {
	case !ok:
		e.err, e.decodeErr = fmt.Errorf("key tenants/%s holds a %s", id, o.GetTypeMeta().Kind), true
		return e
	case t.Metadata.Name != id:
		e.err, e.decodeErr = fmt.Errorf("metadata.name %q does not match the key tenants/%s", t.Metadata.Name, id), true
	}
	e.obj = t
	if e.err == nil {
		e.err = c.validateTenant(t)
	}
	return e
}

// reportInvalid logs and counts a tenant value that cannot be served, once
// per stored value.
func (c *catalogState) reportInvalid(id string, e *tenantEntry) {
	c.s.metrics.invalidValues.WithLabelValues(string(tenants.KindTenant)).Inc()
	c.s.log.Warn("stored tenant value is invalid; keeping its last good version", "tenant_id", id, "revision", e.modRev, "has_last_good", c.lastGood[id] != nil, "error", e.err)
}

func (c *catalogState) validateTenant(t *tenants.Tenant) error {
	tiers := tenants.BuiltinTiers()
	for n, t := range c.tiers {
		tiers[n] = t
	}
	if list := tenants.Validate(t, tiers); len(list) > 0 {
		return list
	}
	return nil
}

func (c *catalogState) putTier(name string, kv keyValue) bool {
	if c.tierRevs[name] == kv.modRev {
		return false
	}
	c.tierRevs[name] = kv.modRev
	o, err := decodeStored(kv.value, kv.modRev)
	if err == nil {
		if t, ok := o.(*tenants.Tier); !ok || t.Metadata.Name != name {
			err = fmt.Errorf("key tiers/%s does not hold Tier %q", name, name)
		} else if list := tenants.Validate(t, nil); len(list) > 0 {
			err = list
		} else {
			c.tiers[name] = t
			c.tiersChanged = true
			return true
		}
	}
	c.s.metrics.invalidValues.WithLabelValues(string(tenants.KindTier)).Inc()
	c.s.log.Warn("stored tier is invalid; keeping its last good version", "tier", name, "revision", kv.modRev, "error", err)
	return false
}

func (c *catalogState) putMesh(name string, kv keyValue) bool {
	if c.meshRev == kv.modRev {
		return false
	}
	c.meshRev = kv.modRev
	o, err := decodeStored(kv.value, kv.modRev)
	if err == nil {
		if m, ok := o.(*tenants.MeshConfig); !ok || name != tenants.MeshConfigName || m.Metadata.Name != name {
			err = fmt.Errorf("key meshconfig/%s does not hold MeshConfig %q", name, tenants.MeshConfigName)
		} else if list := tenants.Validate(m, nil); len(list) > 0 {
			err = list
		} else {
			c.mesh = m
			return true
		}
	}
	c.s.metrics.invalidValues.WithLabelValues(string(tenants.KindMeshConfig)).Inc()
	c.s.log.Warn("stored MeshConfig is invalid; keeping its last good version", "revision", kv.modRev, "error", err)
	return false
}

// build makes the Catalog of the current state, hands it to publish, and
// then records the status of tenants whose stored value is unusable or
// rejected — after publishing, so slow status writes never delay config.
func (c *catalogState) build(ctx context.Context, publish func(*tenants.Catalog)) {
	if c.tiersChanged {
		// A tier appearing or going away can make tenants valid or
		// invalid; their decoded objects (and pointers) stay the same.
		for id, e := range c.tenants {
			if e.obj == nil || e.decodeErr {
				continue
			}
			wasValid := e.err == nil
			e.err = c.validateTenant(e.obj)
			if wasValid && e.err != nil {
				c.reportInvalid(id, e)
			}
		}
		c.tiersChanged = false
	}
	in := tenants.Input{Revision: c.rev, Mesh: c.mesh}
	for _, t := range c.tiers {
		in.Tiers = append(in.Tiers, t)
	}
	sort.Slice(in.Tiers, func(i, j int) bool { return in.Tiers[i].Metadata.Name < in.Tiers[j].Metadata.Name })
	invalid := map[string]*tenantEntry{}
	for id, e := range c.tenants {
		if e.err == nil {
			c.lastGood[id] = e.obj
			in.Tenants = append(in.Tenants, e.obj)
			continue
		}
		invalid[id] = e
		if g := c.lastGood[id]; g != nil {
			in.Tenants = append(in.Tenants, g)
		}
	}
	for _, k := range c.apiKeys {
		in.APIKeys = append(in.APIKeys, k)
	}
	in.SharedServices = c.sharedServices()
	cat := tenants.NewCatalog(in, c.prev)
	c.prev = cat
	c.s.revision.Store(c.rev)
	c.s.metrics.revision.Set(float64(c.rev))
	c.s.metrics.catalogBuilds.Inc()
	c.s.metrics.catalogTenants.Set(float64(cat.Len()))
	publish(cat)
	c.reportStatuses(ctx, cat, invalid)
}

// reportStatuses writes status/<tenant> for tenants whose stored value is
// invalid or that the Catalog rejected, and replaces "invalid" by
// "accepted" once the stored value is fine again.
// Healthy tenants without a bad status cost nothing, so a full rebuild of
// thousands of tenants does not write thousands of keys.
func (c *catalogState) reportStatuses(ctx context.Context, cat *tenants.Catalog, invalid map[string]*tenantEntry) {
	want := map[string]tenants.Status{}
	for id, e := range invalid {
		msg := e.err.Error()
		if c.lastGood[id] != nil {
			msg += " (serving the last good version, resourceVersion " + c.lastGood[id].Metadata.ResourceVersion + ")"
		}
		want[id] = tenants.Status{Tenant: id, State: tenants.StateInvalid, Revision: e.modRev, Message: msg}
	}
	for id, err := range cat.Rejected() {
		if _, bad := want[id]; !bad {
			e := c.tenants[id]
			want[id] = tenants.Status{Tenant: id, State: tenants.StateRejected, Revision: e.modRev, Message: err.Error()}
		}
	}
	for id, st := range c.statuses {
		// Only "invalid" is the watch's own verdict to clear: "rejected"
		// may come from the xDS server (a NACK, a translation error),
		// which clears it itself once a proxy accepts the tenant.
		if _, bad := want[id]; bad || st.State != tenants.StateInvalid {
			continue
		}
		if e, ok := c.tenants[id]; ok {
			want[id] = tenants.Status{Tenant: id, State: tenants.StateAccepted, Revision: e.modRev}
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		st := want[id]
		if cur, ok := c.statuses[id]; ok && sameExceptTime(cur, st) {
			continue
		}
		if st.State == tenants.StateRejected {
			c.s.log.Warn("tenant rejected: it conflicts with other tenants", "tenant_id", id, "revision", st.Revision, "reason", st.Message)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.s.WriteStatus(wctx, st)
		cancel()
		if err != nil {
			c.s.log.Warn("cannot record tenant status", "tenant_id", id, "error", err)
			continue
		}
		st.Time = time.Time{}
		c.statuses[id] = st
	}
}
