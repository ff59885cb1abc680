package xds

import (
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
}

// rejection pins a tenant to its last accepted version while the catalog
// holds the version a proxy rejected.
type rejection struct {
	obj    *tenants.Tenant
	reason string
}

// acceptance follows each tenant's changes through ACK and NACK. It is
// guarded by Server.mu.
type acceptance struct {
	versions map[groupType]uint64 // mirror of each LinearCache's version counter
	sent     map[sentKey]sentVersion
	pending  map[string]*pendingTenant
	lastGood map[string]*tenants.Tenant
	rejected map[string]rejection
}

type sentVersion struct {
	gt      groupType
	version uint64
}

func newAcceptance() *acceptance {
	return &acceptance{
		versions: map[groupType]uint64{},
		sent:     map[sentKey]sentVersion{},
		pending:  map[string]*pendingTenant{},
		lastGood: map[string]*tenants.Tenant{},
		rejected: map[string]rejection{},
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

// effective is the tenant object to translate for id (see effectiveFunc).
func (a *acceptance) effective(id string, inCatalog *tenants.Tenant) *tenants.Tenant {
	r, ok := a.rejected[id]
	if !ok {
		return inCatalog
	}
	if r.obj != inCatalog { // a new version arrived: try it
		delete(a.rejected, id)
		return inCatalog
	}
	return a.lastGood[id]
}

// published records that tenants changed types in a new version.
func (a *acceptance) published(group string, cs *changeSet, cat *tenants.Catalog) {
	for typ, ids := range cs.tenants {
		gt := groupType{group, typ}
		for id := range ids {
			t, ok := cat.Tenant(id)
			if !ok {
				continue
			}
			if r, pinned := a.rejected[id]; pinned && r.obj == t {
				continue // a rollback: the accepted version is already lastGood
			}
			p := a.pending[id]
			if p == nil || p.obj != t {
				p = &pendingTenant{obj: t, waits: map[groupType]uint64{}}
				a.pending[id] = p
			}
			p.waits[gt] = a.versions[gt]
		}
	}
}

// acked settles every wait satisfied by an ACK of version v and returns
// the tenants that are now accepted everywhere.
func (a *acceptance) acked(gt groupType, v uint64) []string {
	var done []string
	for id, p := range a.pending {
		if w, ok := p.waits[gt]; ok && w <= v {
			delete(p.waits, gt)
		}
		if len(p.waits) == 0 {
			a.lastGood[id] = p.obj
			delete(a.pending, id)
			done = append(done, id)
		}
	}
	return done
}

// nacked finds the tenants to blame for a rejected version v: those with
// unacknowledged changes of that type up to v, narrowed to the ones the
// error message names when it names any. They are pinned to their last
// accepted version.
func (a *acceptance) nacked(gt groupType, v uint64, message string) []string {
	var suspects []string
	for id, p := range a.pending {
		if w, ok := p.waits[gt]; ok && w <= v {
			suspects = append(suspects, id)
		}
	}
	if named := mentioned(suspects, message); len(named) > 0 {
		suspects = named
	}
	for _, id := range suspects {
		a.rejected[id] = rejection{obj: a.pending[id].obj, reason: message}
		delete(a.pending, id)
	}
	return suspects
}

// forget drops the state of tenants no longer in the catalog.
func (a *acceptance) forget(cat *tenants.Catalog) {
	for id := range a.lastGood {
		if _, ok := cat.Tenant(id); !ok {
			delete(a.lastGood, id)
			delete(a.pending, id)
			delete(a.rejected, id)
		}
	}
	for id := range a.pending {
		if _, ok := cat.Tenant(id); !ok {
			delete(a.pending, id)
		}
	}
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
