package xds

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// The world of the equivalence walk (equivalence_test.go): a few tenants,
// tiers, shared services and a MeshConfig, each described by a small
// value (a recipe) that an edit changes and build turns into a fresh
// object, the way the store hands the Catalog a new object for every
// changed key and the same object for the others.

// walkIDs are the tenants of the walk; the sidecar nodes belong to the
// first ones.
var walkIDs = []string{"tenant-a", "tenant-b", "tenant-c", "tenant-d"}

type routeRecipe struct {
	name     string
	upstream string // "svc" or "dns"
	timeout  int    // seconds
	local    int    // the route's own local limit (requests/s); 0: none
}

type tenantRecipe struct {
	tier       string // "" (the default), a built-in tier, or "gold" (may not exist)
	suspended  bool
	features   []string
	hosts      int // bit i: host i of the tenant's own pool
	pathPrefix bool
	routes     []routeRecipe
	port, addr int // the svc endpoint
	dns        int // 0: no dns upstream; 1: one name; 2: two names (no grpc client can)
	local      int // tenant local limit (requests/s); 0: the tier's; -1: invalid
	global     int // tenant global limit (requests/min); 0: the tier's
	maxConc    int
	dupEP      bool // a duplicate svc endpoint: no role can translate it
}

type sharedRecipe struct {
	addr, maxReq, timeout int
	features              []string
	dns                   bool
	broken                bool // an unknown lbPolicy: no alias can be built
}

type meshRecipe struct {
	edgePort, sidecarPort int
	authzTimeout          int // ms
	failDeny              bool
}

// world is the store's content; catalog builds the next Catalog from it.
type world struct {
	rng    *rand.Rand
	rev    int64
	recipe map[string]tenantRecipe
	raw    map[string]*tenants.Tenant // current input per present tenant
	shared map[string]sharedRecipe
	sraw   map[string]*tenants.SharedService
	mesh   meshRecipe
	mraw   *tenants.MeshConfig
	gold   bool // the "gold" tier exists
	std    int  // the "standard" tier override (0: built-in)
	tiers  []*tenants.Tier
	cat    *tenants.Catalog
	// origin maps every defaulted tenant a Catalog held to its input, so
	// a reference Catalog can be built from the versions a group serves.
	origin map[*tenants.Tenant]*tenants.Tenant
	// history holds each tenant's distinct Catalog versions, oldest first
	// (a NACK pin rolls back to the one before the current).
	history map[string][]*tenants.Tenant
	// epoch counts tier changes: a tenant defaulted in an older epoch can
	// not be rebuilt from its input any more.
	epoch   int
	epochOf map[*tenants.Tenant]int
}

func newWorld(seed uint64) *world {
	w := &world{
		rng:     rand.New(rand.NewPCG(seed, 11)),
		recipe:  map[string]tenantRecipe{},
		raw:     map[string]*tenants.Tenant{},
		shared:  map[string]sharedRecipe{},
		sraw:    map[string]*tenants.SharedService{},
		origin:  map[*tenants.Tenant]*tenants.Tenant{},
		history: map[string][]*tenants.Tenant{},
		epochOf: map[*tenants.Tenant]int{},
	}
	for _, id := range walkIDs {
		w.setTenant(id, w.randomTenant())
	}
	w.setMesh(meshRecipe{edgePort: 10000, sidecarPort: 15006, authzTimeout: 250})
	w.setTiers()
	return w
}

func (w *world) pick(n int) int { return w.rng.IntN(n) }

func (w *world) randomTenant() tenantRecipe {
	r := tenantRecipe{
		tier: []string{"", "free", "standard", "enterprise"}[w.pick(4)],
		port: 8000 + w.pick(3), addr: 1 + w.pick(3), dns: w.pick(2),
		hosts: w.pick(4), pathPrefix: w.pick(2) == 0,
	}
	if w.pick(2) == 0 {
		r.features = []string{"geo"}
	}
	for i := range 1 + w.pick(2) {
		r.routes = append(r.routes, w.randomRoute(i, r.dns > 0))
	}
	return r
}

func (w *world) randomRoute(i int, dns bool) routeRecipe {
	r := routeRecipe{name: "r" + strconv.Itoa(i), upstream: "svc", timeout: 1 + w.pick(3)}
	if dns && w.pick(2) == 0 {
		r.upstream = "dns"
	}
	if w.pick(4) == 0 {
		r.local = 5 + w.pick(2)
	}
	return r
}

func (w *world) setTenant(id string, r tenantRecipe) {
	w.rev++
	w.recipe[id] = r
	w.raw[id] = r.build(id, w.rev)
}

func (r tenantRecipe) build(id string, rev int64) *tenants.Tenant {
	t := &tenants.Tenant{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTenant},
		Metadata: tenants.ObjectMeta{Name: id, ResourceVersion: strconv.FormatInt(rev, 10)},
	}
	s := &t.Spec
	s.Tier, s.Features, s.PathPrefix, s.MaxConcurrentRequests = r.tier, slices.Clone(r.features), r.pathPrefix, r.maxConc
	if r.suspended {
		s.Status = tenants.StatusSuspended
	}
	for i, h := range []string{id + ".example.com", id + ".alt.example.com"} {
		if r.hosts&(1<<i) != 0 {
			s.Hosts = append(s.Hosts, h)
		}
	}
	svc := tenants.Upstream{Name: "svc", Endpoints: []tenants.Endpoint{{Address: "10.1.0." + strconv.Itoa(r.addr), Port: r.port}}}
	if r.dupEP {
		svc.Endpoints = append(svc.Endpoints, svc.Endpoints[0])
	}
	s.Upstreams = []tenants.Upstream{svc}
	if r.dns > 0 {
		dns := tenants.Upstream{Name: "dns", Endpoints: []tenants.Endpoint{{Address: id + ".svc.example.net", Port: 80}}}
		if r.dns > 1 {
			dns.Endpoints = append(dns.Endpoints, tenants.Endpoint{Address: id + ".svc2.example.net", Port: 80})
		}
		s.Upstreams = append(s.Upstreams, dns)
	}
	for _, rr := range r.routes {
		route := tenants.Route{Name: rr.name, Match: tenants.RouteMatch{PathPrefix: "/" + rr.name + "/"}, Upstream: rr.upstream,
			Timeout: tenants.Duration(strconv.Itoa(rr.timeout) + "s")}
		if rr.upstream == "dns" && r.dns == 0 {
			route.Upstream = "svc"
		}
		if rr.local > 0 {
			route.RateLimit = &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: rr.local, Per: tenants.UnitSecond}}
		}
		s.Routes = append(s.Routes, route)
	}
	if r.local != 0 || r.global != 0 {
		s.RateLimits = &tenants.RateLimits{}
		if r.local != 0 {
			s.RateLimits.Local = &tenants.LocalRateLimit{Requests: max(r.local, 0), Per: tenants.UnitSecond}
		}
		if r.global != 0 {
			s.RateLimits.Global = []tenants.GlobalRateLimit{{Requests: r.global, Per: tenants.UnitMinute}}
		}
	}
	return t
}

func (w *world) setShared(name string, r sharedRecipe, present bool) {
	w.rev++
	if !present {
		delete(w.shared, name)
		delete(w.sraw, name)
		return
	}
	w.shared[name] = r
	s := &tenants.SharedService{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindSharedService},
		Metadata: tenants.ObjectMeta{Name: name, ResourceVersion: strconv.FormatInt(w.rev, 10)},
		Spec: tenants.SharedServiceSpec{
			Endpoints: []tenants.Endpoint{{Address: "10.9.0." + strconv.Itoa(r.addr), Port: 80}},
			Timeout:   tenants.Duration(strconv.Itoa(r.timeout) + "s"),
			Features:  slices.Clone(r.features),
		},
	}
	if r.dns {
		s.Spec.Endpoints = []tenants.Endpoint{{Address: name + ".shared.example.net", Port: 80}}
	}
	if r.maxReq > 0 {
		s.Spec.PerTenant = &tenants.SharedPerTenant{CircuitBreaker: &tenants.CircuitBreaker{MaxRequests: r.maxReq}}
	}
	if r.broken {
		s.Spec.LBPolicy = "bogus"
	}
	w.sraw[name] = s
}

func (w *world) setMesh(r meshRecipe) {
	w.rev++
	w.mesh = r
	w.mraw = &tenants.MeshConfig{
		TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindMeshConfig},
		Metadata: tenants.ObjectMeta{Name: tenants.MeshConfigName, ResourceVersion: strconv.FormatInt(w.rev, 10)},
		Spec: tenants.MeshConfigSpec{
			EdgePort: r.edgePort, SidecarInboundPort: r.sidecarPort,
			Authz:     tenants.AuthzSettings{Timeout: tenants.Duration(strconv.Itoa(r.authzTimeout) + "ms")},
			RateLimit: tenants.RateLimitSettings{FailureModeDeny: r.failDeny},
		},
	}
}

// setTiers rebuilds the tier overrides (new objects: every tenant is
// defaulted again, as when the store sees a Tier change).
func (w *world) setTiers() {
	w.rev++
	w.epoch++
	w.tiers = nil
	mk := func(name string, maxConc, local int, prio tenants.Priority) *tenants.Tier {
		return &tenants.Tier{
			TypeMeta: tenants.TypeMeta{APIVersion: tenants.APIVersion, Kind: tenants.KindTier},
			Metadata: tenants.ObjectMeta{Name: name, ResourceVersion: strconv.FormatInt(w.rev, 10)},
			Spec: tenants.TierSpec{MaxConcurrentRequests: maxConc, Priority: prio,
				RateLimits: &tenants.RateLimits{Local: &tenants.LocalRateLimit{Requests: local, Per: tenants.UnitSecond}}},
		}
	}
	if w.gold {
		w.tiers = append(w.tiers, mk("gold", 77, 50, tenants.PriorityHigh))
	}
	if w.std > 0 {
		w.tiers = append(w.tiers, mk("standard", w.std, 30, tenants.PriorityDefault))
	}
}

// input is what the store would hand NewCatalog; rawOf overrides the
// tenants' inputs (nil: the current ones).
func (w *world) input(rawOf map[string]*tenants.Tenant) tenants.Input {
	if rawOf == nil {
		rawOf = w.raw
	}
	in := tenants.Input{Revision: w.rev, Mesh: w.mraw, Tiers: w.tiers}
	for _, id := range sortedKeys(rawOf) {
		in.Tenants = append(in.Tenants, rawOf[id])
	}
	for _, name := range sortedKeys(w.sraw) {
		in.SharedServices = append(in.SharedServices, w.sraw[name])
	}
	return in
}

// catalog builds the next Catalog incrementally from the last one, as
// the store does.
func (w *world) catalog() *tenants.Catalog {
	w.rev++
	cat := tenants.NewCatalog(w.input(nil), w.cat)
	for _, id := range cat.TenantIDs() {
		t, _ := cat.Tenant(id)
		if _, seen := w.origin[t]; !seen {
			w.origin[t] = w.raw[id]
			w.epochOf[t] = w.epoch
		}
		if h := w.history[id]; len(h) == 0 || h[len(h)-1] != t {
			w.history[id] = append(h, t)
		}
	}
	w.cat = cat
	return cat
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// editTenant applies one random edit to one tenant and names it.
func (w *world) editTenant(id string) string {
	r, present := w.recipe[id]
	if !present {
		w.setTenant(id, w.randomTenant())
		return "add " + id
	}
	r.routes = slices.Clone(r.routes)
	var what string
	switch w.pick(13) {
	case 0:
		r.port, r.addr, what = 8000+w.pick(3), 1+w.pick(3), "endpoint"
	case 1:
		if len(r.routes) > 0 {
			i := w.pick(len(r.routes))
			r.routes[i].timeout, what = 1+w.pick(3), "route timeout"
		} else {
			r.routes, what = append(r.routes, w.randomRoute(0, r.dns > 0)), "route added"
		}
	case 2:
		if len(r.routes) < 3 && w.pick(2) == 0 {
			r.routes, what = append(r.routes, w.randomRoute(len(r.routes), r.dns > 0)), "route added"
		} else if len(r.routes) > 0 {
			r.routes, what = r.routes[:len(r.routes)-1], "route removed"
		}
	case 3:
		r.hosts, r.pathPrefix, what = w.pick(4), w.pick(2) == 0, "hosts"
	case 4:
		r.features, what = [][]string{nil, {"geo"}, {"pay"}, {"geo", "pay"}}[w.pick(4)], "features"
	case 5:
		r.suspended, what = !r.suspended, "status"
	case 6:
		r.tier, what = []string{"", "free", "standard", "enterprise", "gold"}[w.pick(5)], "tier"
	case 7, 11:
		r.local, r.global, what = []int{0, 0, 7, 9}[w.pick(4)], []int{0, 60, 120}[w.pick(3)], "rate limits"
		if len(r.routes) > 0 {
			r.routes[0].local = []int{0, 5, 6}[w.pick(3)]
		}
	case 8:
		r.maxConc, what = []int{0, 10, 500}[w.pick(3)], "max concurrent requests"
	case 9:
		r.dns, what = w.pick(3), "dns upstream"
	case 10:
		// A translation failure for every role, or just the edge's.
		if r.dupEP || r.local < 0 {
			r.dupEP, r.local, what = false, 0, "repaired"
		} else if w.pick(2) == 0 {
			r.dupEP, what = true, "broken (duplicate endpoint)"
		} else {
			r.local, what = -1, "broken (edge: invalid local limit)"
		}
	default:
		w.rev++
		delete(w.recipe, id)
		delete(w.raw, id)
		return "remove " + id
	}
	w.setTenant(id, r)
	return fmt.Sprintf("%s: %s", id, what)
}

// editShared adds, changes or removes a shared service.
func (w *world) editShared() string {
	name := []string{"geo", "pay"}[w.pick(2)]
	r, present := w.shared[name]
	r.features = slices.Clone(r.features)
	switch op := w.pick(9); {
	case !present:
		r = sharedRecipe{addr: 1 + w.pick(3), timeout: 5}
		if w.pick(2) == 0 {
			r.features = []string{name}
		}
		w.setShared(name, r, true)
		return "shared " + name + " added"
	case op == 0:
		w.setShared(name, r, false)
		return "shared " + name + " removed"
	case op == 1:
		r.addr = 1 + w.pick(3)
	case op == 2:
		r.features = [][]string{nil, {name}}[w.pick(2)]
	case op == 3:
		r.maxReq = []int{0, 5, 50}[w.pick(3)]
	case op == 4:
		r.timeout = 5 + w.pick(3)
	case op == 5:
		r.dns = !r.dns
	case op <= 7:
		r.broken = !r.broken
	}
	w.setShared(name, r, true) // (a new object, also when nothing changed)
	return "shared " + name + " changed"
}

func (w *world) editMesh() string {
	r := w.mesh
	switch w.pick(4) {
	case 0, 1:
		r.edgePort = 10000 + 80 - (r.edgePort - 10000) // 10000 <-> 10080
	case 2:
		r.sidecarPort = 15006 + 100 - (r.sidecarPort - 15006) // 15006 <-> 15106
	default:
		r.authzTimeout, r.failDeny = 550-r.authzTimeout, !r.failDeny // 250ms <-> 300ms
	}
	w.setMesh(r)
	return "mesh changed"
}

func (w *world) editTiers() string {
	if w.pick(2) == 0 {
		w.gold = !w.gold
	} else {
		w.std = []int{0, 150, 300}[w.pick(3)]
	}
	w.setTiers()
	return "tiers changed"
}

// repairAll gives every tenant that some role cannot translate a new,
// translatable version, and repairs the shared services (a sidecar
// cannot be translated with a broken one it is entitled to).
func (w *world) repairAll() string {
	n := 0
	for _, name := range sortedKeys(w.shared) {
		if r := w.shared[name]; r.broken {
			r.broken = false
			w.setShared(name, r, true)
			n++
		}
	}
	for _, id := range sortedKeys(w.recipe) {
		r := w.recipe[id]
		if r.dupEP || r.local < 0 || r.dns > 1 {
			r.dupEP, r.local, r.dns = false, max(r.local, 0), min(r.dns, 1)
			w.setTenant(id, r)
			n++
		}
	}
	return fmt.Sprintf("%d repaired", n)
}
