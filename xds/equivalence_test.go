package xds

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// TestGroupsEqualFullTranslation is the contract of the incremental
// groups: after every step of a random walk of catalog changes, what each
// group has published (its change sets applied in order, as the caches
// apply them) equals a full translate.Translate, for every role.
//
// The full translation is of the Catalog the group is meant to serve.
// That is the Catalog itself, except for the two ways a tenant keeps an
// older version: a version a proxy rejected is replaced by the last one
// accepted (a NACK pin; none accepted: the tenant is left out), and a
// version that does not translate keeps the version served before it
// (none: left out). Then the reference is a Catalog built from the same
// inputs with those tenants' older inputs.
//
// A group error (a shared resource that cannot be built) must come with
// an error of the full translation, and leave what was published as it was.
func TestGroupsEqualFullTranslation(t *testing.T) {
	seeds, steps := uint64(6), 150
	switch {
	case testing.Short():
		seeds, steps = 3, 30
	case raceEnabled:
		// The race detector makes a translation ~15x slower; make test
		// runs with it and must stay quick.
		seeds, steps = 4, 40
	}
	var mu sync.Mutex
	total := map[string]int{}
	t.Run("walk", func(t *testing.T) {
		for seed := range seeds {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				t.Parallel()
				stats := walkGroups(t, seed, steps)
				mu.Lock()
				defer mu.Unlock()
				for k, v := range stats {
					total[k] += v
				}
			})
		}
	})
	if t.Failed() || testing.Short() {
		return
	}
	t.Logf("walk: %v", total)
	// The walk must reach the cases the shortcuts get wrong most easily.
	for _, k := range []string{"served a pinned version", "left a pinned tenant out", "kept a failing tenant's last good version",
		"group error", "sidecar kept its output", "tiers changed", "mesh changed", "NACK pin"} {
		if total[k] == 0 {
			t.Errorf("the walk never %s (%v)", k, total)
		}
	}
}

// walkGroups runs one walk and counts what its groups went through.
func walkGroups(t *testing.T, seed uint64, steps int) map[string]int {
	w := newWorld(seed)
	acc := newAcceptance()
	models := []*groupModel{
		newGroupModel(translate.Node{ID: "edge-1", Role: translate.RoleEdge}),
		newGroupModel(translate.Node{ID: "grpc-1", Role: translate.RoleGRPC}),
		newGroupModel(translate.Node{ID: "sc-a", Role: translate.RoleSidecar, Tenant: walkIDs[0], Service: "svc", AppPort: 8080}),
		newGroupModel(translate.Node{ID: "gs-c", Role: translate.RoleGRPCServer, Tenant: walkIDs[2], Service: "svc", AppPort: 9090, AppAddress: "127.0.0.1"}),
	}
	var log []string
	for step := range steps {
		if step == steps/3 {
			// Groups are created when their first node connects, whatever
			// state the tenants are in then.
			models = append(models, newGroupModel(translate.Node{ID: "sc-d", Role: translate.RoleSidecar, Tenant: walkIDs[3], Service: "svc", AppPort: 8082}))
		}
		what := walkStep(w, acc)
		log = append(log, what)
		for _, k := range []string{"tiers changed", "mesh changed", "NACK pin"} {
			if strings.Contains(what, k) {
				models[0].stats[k]++
			}
		}
		cat := w.cat
		// What each group must serve, read before the syncs: a group's
		// call of acc.effective drops the pins a new version ended.
		for _, m := range models {
			m.expect(t, w, cat, acc)
		}
		for _, m := range models {
			m.sync(t, cat, acc.effective)
		}
		for _, m := range models {
			if diff := m.diff(); diff != "" {
				t.Fatalf("step %d (%s), group %s: published differs from the full translation:\n%s\nthe last steps:\n  %s",
					step, what, m.g.key, diff, strings.Join(log[max(0, len(log)-12):], "\n  "))
			}
		}
	}
	stats := map[string]int{}
	for _, m := range models {
		for k, v := range m.stats {
			stats[k] += v
		}
	}
	return stats
}

// walkStep changes the world (or pins a tenant) and returns what it did.
func walkStep(w *world, acc *acceptance) string {
	var what []string
	switch op := w.pick(21); {
	case op < 10:
		what = append(what, w.editTenant(walkIDs[w.pick(len(walkIDs))]))
	case op < 12:
		for range 2 + w.pick(2) {
			what = append(what, w.editTenant(walkIDs[w.pick(len(walkIDs))]))
		}
	case op < 14:
		what = append(what, w.editShared())
	case op < 16:
		what = append(what, w.editMesh())
	case op < 17:
		// A tenant served an older object (failing, or pinned) after a
		// tier change would keep that object's tier defaults, which no
		// Catalog can rebuild from its input: every tenant is repaired
		// with the change, so each is served its new version.
		what = append(what, w.repairAll()+"; "+w.editTiers())
	case op < 20 && w.cat != nil:
		return pinTenant(w, acc)
	default:
		what = append(what, "no-op")
	}
	cat := w.catalog()
	acc.forget(cat)
	return strings.Join(what, "; ")
}

// pinTenant does what a NACK of a tenant's current version does: the
// tenant is served its previous version (left out when it has none)
// until a new version of it arrives.
func pinTenant(w *world, acc *acceptance) string {
	ids := w.cat.TenantIDs()
	if len(ids) == 0 {
		return "no tenant to pin"
	}
	id := ids[w.pick(len(ids))]
	cur, _ := w.cat.Tenant(id)
	acc.rejected[id] = rejection{obj: cur, reason: "walk"}
	delete(acc.lastGood, id)
	if h := w.history[id]; len(h) >= 2 && w.epochOf[h[len(h)-2]] == w.epoch {
		acc.lastGood[id] = h[len(h)-2]
		return "NACK pin " + id + " to its previous version"
	}
	return "NACK pin " + id + " (no earlier version: left out)"
}

// groupModel is one group under test, what it has published so far, and
// what it should have published.
type groupModel struct {
	g    *group
	node translate.Node
	view map[resourcev3.Type]map[string]types.Resource
	// served are the tenant versions the expected output is made of.
	served map[string]*tenants.Tenant
	want   *translate.Resources
	// published: want is the result of a translation (not the empty start).
	published bool
	// wantErr: the full translation failed, so the group must fail too.
	wantErr error
	gotErr  error
	// memo and ok remember translations (see translate), equal the
	// pairs of published and expected resources found equal.
	memo  map[string]result
	ok    map[versionKey]bool
	equal map[[2]types.Resource]bool
	stats map[string]int
}

func newGroupModel(n translate.Node) *groupModel {
	m := &groupModel{g: newGroup(groupKey(n), n, "w"), node: n, view: map[resourcev3.Type]map[string]types.Resource{},
		served: map[string]*tenants.Tenant{}, want: &translate.Resources{}, memo: map[string]result{}, ok: map[versionKey]bool{},
		equal: map[[2]types.Resource]bool{}, stats: map[string]int{}}
	for _, typ := range append(resourceTypes, RateLimitConfigType) {
		m.view[typ] = map[string]types.Resource{}
	}
	return m
}

func (m *groupModel) perTenant() bool {
	return m.node.Role == translate.RoleEdge || m.node.Role == translate.RoleGRPC
}

// expect computes what the group must publish for cat.
func (m *groupModel) expect(t *testing.T, w *world, cat *tenants.Catalog, acc *acceptance) {
	t.Helper()
	pinned := func(id string, inCat *tenants.Tenant) *tenants.Tenant {
		if r, ok := acc.rejected[id]; ok && r.obj == inCat {
			return acc.lastGood[id]
		}
		return inCat
	}
	next := map[string]*tenants.Tenant{}
	for _, id := range cat.TenantIDs() {
		if !m.perTenant() && id != m.node.Tenant {
			continue // nothing but its own tenant feeds a sidecar
		}
		inCat, _ := cat.Tenant(id)
		e := pinned(id, inCat)
		switch {
		case e == nil:
			m.stats["left a pinned tenant out"]++
		case m.translates(t, w, cat, e):
			next[id] = e
			if e != inCat {
				m.stats["served a pinned version"]++
			}
		case !m.perTenant() && !m.published:
			return // a sidecar's first translation failed: nothing yet
		case m.served[id] != nil:
			next[id] = m.served[id]
			m.stats["kept a failing tenant's last good version"]++
		}
	}
	res, err := m.translate(t, w, cat, next)
	switch {
	case err == nil:
		m.want, m.served, m.wantErr, m.published = res, next, nil, true
	case m.perTenant():
		m.wantErr = err // the group fails and keeps what it published
		m.stats["group error"]++
	default:
		// A sidecar's translation fails for its tenant, not the group: it
		// keeps what it published.
		m.wantErr = nil
		m.stats["sidecar kept its output"]++
	}
}

type result struct {
	res *translate.Resources
	err error
	// inputs keeps the objects the key names by address alive, so no
	// other object can take that address while the entry exists.
	inputs []any
}

// translate is translate.Translate of the reference Catalog of the given
// tenant versions, remembered by its inputs (the walk repeats them often,
// and the race detector makes translations slow).
func (m *groupModel) translate(t *testing.T, w *world, cat *tenants.Catalog, served map[string]*tenants.Tenant) (*translate.Resources, error) {
	t.Helper()
	var key strings.Builder
	inputs := []any{cat.Mesh()}
	fmt.Fprintf(&key, "%p", cat.Mesh())
	for _, s := range cat.SharedServices() {
		fmt.Fprintf(&key, " %p", s)
		inputs = append(inputs, s)
	}
	for _, id := range sortedKeys(served) {
		fmt.Fprintf(&key, " %s=%p", id, served[id])
		inputs = append(inputs, served[id])
	}
	if r, ok := m.memo[key.String()]; ok {
		return r.res, r.err
	}
	if len(m.memo) > 64 {
		clear(m.memo)
	}
	// A sidecar's reference holds its own tenant only: no other can
	// change its output.
	res, _, err := translate.Translate(w.reference(t, served), m.node)
	m.memo[key.String()] = result{res, err, inputs}
	return res, err
}

// versionKey is a tenant version under a mesh and shared services (the
// walk has at most two), by pointer, not address: the map keeps them alive.
type versionKey struct {
	mesh   *tenants.MeshConfig
	shared [2]*tenants.SharedService
	t      *tenants.Tenant
}

// translates reports whether tenant version e can be translated for the
// group's node on its own.
func (m *groupModel) translates(t *testing.T, w *world, cat *tenants.Catalog, e *tenants.Tenant) bool {
	t.Helper()
	if !m.perTenant() {
		_, err := m.translate(t, w, cat, map[string]*tenants.Tenant{e.ID(): e})
		return err == nil
	}
	key := versionKey{mesh: cat.Mesh(), t: e}
	if copy(key.shared[:], cat.SharedServices()) < len(cat.SharedServices()) {
		t.Fatal("versionKey holds two shared services")
	}
	ok, seen := m.ok[key]
	if !seen {
		_, err := translate.TranslateTenant(cat.Mesh(), cat.SharedServices(), e, m.node.Role)
		ok = err == nil
		m.ok[key] = ok
	}
	return ok
}

// sync runs the group and applies its change set to the view.
func (m *groupModel) sync(t *testing.T, cat *tenants.Catalog, effective effectiveFunc) {
	t.Helper()
	cs, _, err := m.g.sync(cat, effective)
	m.gotErr = err
	if err != nil {
		if errors.Is(err, translate.ErrInvalidNode) {
			t.Fatalf("group %s: %v", m.g.key, err)
		}
		return
	}
	for typ, up := range cs.upserts {
		for name, r := range up {
			m.view[typ][name] = r
		}
	}
	for typ, del := range cs.deletes {
		for _, name := range del {
			if _, ok := m.view[typ][name]; !ok {
				t.Errorf("group %s deletes %s %s, which it never published", m.g.key, typ, name)
			}
			delete(m.view[typ], name)
		}
	}
}

// diff compares the view with the expected output ("" when equal).
func (m *groupModel) diff() string {
	if (m.wantErr != nil) != (m.gotErr != nil) {
		return fmt.Sprintf("group error %v, full translation error %v", m.gotErr, m.wantErr)
	}
	var out []string
	for typ, want := range m.want.ByType() {
		if typ == RateLimitConfigType && m.node.Role != translate.RoleEdge {
			continue // only the edge group feeds the RateLimitConfig cache
		}
		got := m.view[typ]
		names := map[string]bool{}
		for _, r := range want {
			name := resourceName(r)
			names[name] = true
			g, ok := got[name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("missing %s %s", shortType(typ), name))
			case m.equal[[2]types.Resource{g, r}]:
				// compared before (both are immutable)
			case !proto.Equal(g, r):
				out = append(out, fmt.Sprintf("%s %s differs:\n  published: %s\n  full:      %s", shortType(typ), name, short(g), short(r)))
			default:
				if len(m.equal) > 4096 {
					clear(m.equal)
				}
				m.equal[[2]types.Resource{g, r}] = true
			}
		}
		for name := range got {
			if !names[name] {
				out = append(out, fmt.Sprintf("extra %s %s", shortType(typ), name))
			}
		}
	}
	return strings.Join(out, "\n")
}

func short(r proto.Message) string {
	s := prototext.MarshalOptions{}.Format(r)
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return s
}

// reference is the Catalog of exactly the given tenant versions, with
// the world's mesh, tiers and shared services: the Catalog itself when
// those are its tenants.
func (w *world) reference(t *testing.T, served map[string]*tenants.Tenant) *tenants.Catalog {
	t.Helper()
	same := len(served) == w.cat.Len()
	raws := map[string]*tenants.Tenant{}
	for id, s := range served {
		if cur, _ := w.cat.Tenant(id); cur != s {
			same = false
		}
		raws[id] = w.origin[s]
	}
	if same {
		return w.cat
	}
	ref := tenants.NewCatalog(w.input(raws), nil)
	if ref.Len() != len(served) || len(ref.Rejected()) > 0 {
		t.Fatalf("reference catalog holds %v (rejected %v), want %v", ref.TenantIDs(), ref.Rejected(), sortedKeys(served))
	}
	for id, s := range served {
		if rt, _ := ref.Tenant(id); !reflect.DeepEqual(rt, s) {
			cur, _ := w.cat.Tenant(id)
			t.Fatalf("reference catalog: tenant %s is not the version served (the walk changed tiers under it): served rev %s epoch %d, catalog rev %s epoch %d, now %d",
				id, s.Metadata.ResourceVersion, w.epochOf[s], cur.Metadata.ResourceVersion, w.epochOf[cur], w.epoch)
		}
	}
	return ref
}
