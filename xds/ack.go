package xds

import (
	"sort"
	"strconv"
	"strings"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// groupType identifies one LinearCache: a group's resource type.
type groupType struct{ group, typ string }

// sentKey identifies one response on one stream. SotW nonces are unique
// per server, delta nonces per stream: the stream id and protocol make
// them unique here.
type sentKey struct {
	delta  bool
	stream int64
	nonce  string
}

// pendingTenant is a tenant version pushed but not yet acknowledged for
// every type it changed.
type pendingTenant struct {
	obj   *tenants.Tenant
	waits map[groupType]uint64 // version that must be ACKed
	// rejected: a proxy of some group NACKed obj. The other groups' ACKs
	// still count for them (groupAcked), but obj never becomes the
	// tenant's accepted version.
	rejected bool
}

// waitsIn reports whether the tenant still waits for an ACK of group.
func (p *pendingTenant) waitsIn(group string) bool {
	for gt := range p.waits {
		if gt.group == group {
			return true
		}
	}
	return false
}

// pin holds a tenant in one group at another version while the Catalog
// holds the version a proxy of that group rejected.
type pin struct {
	rejected *tenants.Tenant // the Catalog's version, NACKed
	// to is served instead; nil: no accepted version is known, and the
	// rejected one goes on being served (a NACK never removes a tenant).
	to     *tenants.Tenant
	node   string // who NACKed
	reason string // the NACK's error detail
}

// acceptance follows each tenant's changes through ACK and NACK. It is
// guarded by Server.mu.
type acceptance struct {
	versions map[groupType]uint64 // mirror of each LinearCache's version counter
	sent     map[sentKey]sentVersion
	pending  map[string]*pendingTenant
	// accepted is each tenant's last version that every group it was
	// sent to acknowledged; it is persisted (accepted.go).
	accepted map[string]*tenants.Tenant
	// stored are the accepted versions read from etcd at start that no
	// version accepted since replaced: as stored, not admitted by a
	// Catalog (admitStored admits one when a rollback needs it).
	stored map[string]*tenants.Tenant
	// written is the revision accepted/<tenant> holds in etcd.
	written map[string]string
	// groupAcked is, per group, each tenant's last version the group
	// acknowledged for every type it changed there.
	groupAcked map[string]map[string]*tenants.Tenant
	// pins are, per group, the tenants held back after a trusted NACK
	// of a proxy of that group. Only groups with pins have an entry.
	pins map[string]map[string]pin
}

type sentVersion struct {
	gt      groupType
	version uint64
}

func newAcceptance() *acceptance {
	return &acceptance{
		versions:   map[groupType]uint64{},
		sent:       map[sentKey]sentVersion{},
		pending:    map[string]*pendingTenant{},
		accepted:   map[string]*tenants.Tenant{},
		stored:     map[string]*tenants.Tenant{},
		written:    map[string]string{},
		groupAcked: map[string]map[string]*tenants.Tenant{},
		pins:       map[string]map[string]pin{},
	}
}

// maxSent bounds the nonce table: a client that never answers must not
// grow it forever. Old entries are only needed until the next request.
const maxSent = 1 << 16

func (a *acceptance) recordSent(k sentKey, gt groupType, versionInfo string) {
	v, ok := parseVersion(versionInfo)
	if !ok {
		return
	}
	if len(a.sent) >= maxSent {
		for old := range a.sent {
			delete(a.sent, old)
			if len(a.sent) < maxSent/2 {
				break
			}
		}
	}
	a.sent[k] = sentVersion{gt: gt, version: v}
}

func (a *acceptance) takeSent(k sentKey) (sentVersion, bool) {
	s, ok := a.sent[k]
	delete(a.sent, k)
	return s, ok
}

// servedAsIs is the effectiveFunc of a group without pins.
func servedAsIs(_ string, inCatalog *tenants.Tenant) *tenants.Tenant { return inCatalog }

// effectiveIn is the effectiveFunc of group: the Catalog's version, but
// the pinned one while the Catalog holds the version the group's proxy
// rejected. It never returns nil for a tenant the Catalog holds.
func (a *acceptance) effectiveIn(group string) effectiveFunc {
	pins := a.pins[group]
	if len(pins) == 0 {
		return servedAsIs
	}
	return func(id string, inCatalog *tenants.Tenant) *tenants.Tenant {
		p, ok := pins[id]
		switch {
		case !ok:
			return inCatalog
		case p.rejected != inCatalog: // a new version arrived: try it
			delete(pins, id)
			if len(pins) == 0 {
				delete(a.pins, group)
			}
			return inCatalog
		case p.to == nil:
			return inCatalog
		}
		return p.to
	}
}

// published records that tenants changed types of group in a new version.
func (a *acceptance) published(group string, cs *changeSet, cat *tenants.Catalog) {
	pins := a.pins[group]
	for typ, ids := range cs.tenants {
		gt := groupType{group, typ}
		for id := range ids {
			t, ok := cat.Tenant(id)
			if !ok {
				continue
			}
			if p, pinned := pins[id]; pinned && p.rejected == t {
				continue // the group's rollback (or its rejected version kept): nothing new to accept
			}
			p := a.pending[id]
			if p == nil || p.obj != t {
				p = &pendingTenant{obj: t, waits: map[groupType]uint64{}, rejected: a.pinnedAnywhere(id, t)}
				a.pending[id] = p
			}
			p.waits[gt] = a.versions[gt]
		}
	}
}

// pinnedAnywhere reports whether some group holds tenant version t back.
func (a *acceptance) pinnedAnywhere(id string, t *tenants.Tenant) bool {
	for _, pins := range a.pins {
		if p, ok := pins[id]; ok && p.rejected == t {
			return true
		}
	}
	return false
}

// acked settles every wait satisfied by an ACK of version v and returns
// the tenants that are now accepted everywhere.
func (a *acceptance) acked(gt groupType, v uint64) []string {
	var done []string
	for id, p := range a.pending {
		if w, ok := p.waits[gt]; !ok || w > v {
			continue
		}
		delete(p.waits, gt)
		if !p.waitsIn(gt.group) {
			inner(a.groupAcked, gt.group)[id] = p.obj
		}
		if len(p.waits) > 0 {
			continue
		}
		delete(a.pending, id)
		if p.rejected {
			continue
		}
		a.accepted[id] = p.obj
		delete(a.stored, id)
		done = append(done, id)
	}
	sort.Strings(done)
	return done
}

// blame is one tenant a NACK pinned, and where to.
type blame struct {
	id           string
	rejected, to *tenants.Tenant // to nil: still serving rejected
}

// nacked finds the tenants to blame for a rejected version v of gt:
// those with unacknowledged changes of that type up to v, narrowed to
// the ones the error message names when it names any. Each is pinned in
// gt's group alone (rollbackTarget says to what); no other group's
// configuration changes.
func (a *acceptance) nacked(gt groupType, v uint64, message, node string, cat *tenants.Catalog) []blame {
	var suspects []string
	for id, p := range a.pending {
		if w, ok := p.waits[gt]; ok && w <= v {
			suspects = append(suspects, id)
		}
	}
	if named := mentioned(suspects, message); len(named) > 0 {
		suspects = named
	}
	sort.Strings(suspects)
	out := make([]blame, 0, len(suspects))
	for _, id := range suspects {
		p := a.pending[id]
		p.rejected = true
		for k := range p.waits {
			if k.group == gt.group {
				delete(p.waits, k)
			}
		}
		if len(p.waits) == 0 {
			delete(a.pending, id)
		}
		to := a.rollbackTarget(gt.group, id, p.obj, cat)
		inner(a.pins, gt.group)[id] = pin{rejected: p.obj, to: to, node: node, reason: message}
		out = append(out, blame{id: id, rejected: p.obj, to: to})
	}
	return out
}

// rollbackTarget is the version group serves for tenant id instead of
// rejected: the newest (by etcd revision) of the version the group last
// acknowledged, the version every group accepted, and the accepted
// version stored in etcd (after a restart the only one known). nil when
// none is known or each is rejected itself: the rejected version stays,
// as the proxy keeps what it had anyway (Envoy keeps its last accepted
// resources on a NACK: GrpcMuxImpl::onDiscoveryResponse in
// source/extensions/config_subscription/grpc/grpc_mux_impl.cc records
// version_info only on success, and DeltaSubscriptionState::handleBadResponse
// in delta_subscription_state.cc records no resource version).
func (a *acceptance) rollbackTarget(group, id string, rejected *tenants.Tenant, cat *tenants.Catalog) *tenants.Tenant {
	var best *tenants.Tenant
	bestRev := int64(-1)
	for _, t := range []*tenants.Tenant{a.groupAcked[group][id], a.accepted[id]} {
		if r := revision(t); t != nil && t != rejected && r != revision(rejected) && r > bestRev {
			best, bestRev = t, r
		}
	}
	if raw := a.stored[id]; raw != nil {
		if r := revision(raw); r != revision(rejected) && r > bestRev {
			if t := admitStored(raw, cat); t != nil {
				best = t
			}
		}
	}
	return best
}

// admitStored makes a stored accepted version translatable: admitted
// under the Catalog's tier, as the Catalog admits every tenant (its
// resolved view is attached only by admission, tenants/resolved.go). nil
// when its tier no longer exists.
func admitStored(raw *tenants.Tenant, cat *tenants.Catalog) *tenants.Tenant {
	tier, ok := cat.Tier(raw.Spec.Tier)
	if !ok {
		return nil
	}
	return tenants.DefaultedTenant(raw, tier)
}

// revision is the etcd revision of a tenant version (-1: none).
func revision(t *tenants.Tenant) int64 {
	if t == nil {
		return -1
	}
	r, err := strconv.ParseInt(t.Metadata.ResourceVersion, 10, 64)
	if err != nil {
		return -1
	}
	return r
}

// forget drops the state of tenants no longer in the catalog.
func (a *acceptance) forget(cat *tenants.Catalog) {
	gone := func(id string) bool { _, ok := cat.Tenant(id); return !ok }
	for _, m := range []map[string]*tenants.Tenant{a.accepted, a.stored} {
		for id := range m {
			if gone(id) {
				delete(m, id)
			}
		}
	}
	for id := range a.written {
		if gone(id) {
			delete(a.written, id)
		}
	}
	for id := range a.pending {
		if gone(id) {
			delete(a.pending, id)
		}
	}
	for g, m := range a.groupAcked {
		for id := range m {
			if gone(id) {
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(a.groupAcked, g)
		}
	}
	for g, m := range a.pins {
		for id := range m {
			if gone(id) {
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(a.pins, g)
		}
	}
}

// dropGroup forgets what an evicted group acknowledged and its pins: a
// node that connects again gets a new group and the Catalog's versions.
func (a *acceptance) dropGroup(key string) {
	delete(a.groupAcked, key)
	delete(a.pins, key)
}

// inner is m[k], created when missing.
func inner[V any](m map[string]map[string]V, k string) map[string]V {
	if m[k] == nil {
		m[k] = map[string]V{}
	}
	return m[k]
}

// mentioned returns the ids that appear in msg as whole resource-name
// tokens (resource names carry the tenant id: "tenant-a.executive",
// "tenant-a/executive/...").
func mentioned(ids []string, msg string) []string {
	tokens := map[string]bool{}
	for _, tok := range strings.FieldsFunc(msg, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) {
		tokens[tok] = true
	}
	var out []string
	for _, id := range ids {
		if tokens[id] {
			out = append(out, id)
		}
	}
	return out
}

// parseVersion reads the counter of a LinearCache version "<prefix>.<n>".
func parseVersion(s string) (uint64, bool) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// DebugPin is one tenant a NACK holds back in one group.
type DebugPin struct {
	Tenant string `json:"tenant"`
	Group  string `json:"group"`
	Node   string `json:"node"`
	// RejectedRevision is the Catalog's version the node rejected;
	// ServedRevision the one served instead ("": the rejected one stays,
	// none accepted being known).
	RejectedRevision string `json:"rejectedRevision"`
	ServedRevision   string `json:"servedRevision,omitempty"`
	Reason           string `json:"reason"`
}

// debugPins lists the pins, sorted, and the reason per tenant.
func (a *acceptance) debugPins() (map[string]string, []DebugPin) {
	reasons := map[string]string{}
	pins := []DebugPin{}
	for g, m := range a.pins {
		for id, p := range m {
			d := DebugPin{Tenant: id, Group: g, Node: p.node, RejectedRevision: p.rejected.Metadata.ResourceVersion, Reason: p.reason}
			if p.to != nil {
				d.ServedRevision = p.to.Metadata.ResourceVersion
			}
			pins = append(pins, d)
			reasons[id] = "group " + g + ": " + p.reason
		}
	}
	sort.Slice(pins, func(i, j int) bool {
		if pins[i].Tenant != pins[j].Tenant {
			return pins[i].Tenant < pins[j].Tenant
		}
		return pins[i].Group < pins[j].Group
	})
	return reasons, pins
}
