package tenants

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestIncrementalCatalogEqualsFullBuild applies random changes (edits,
// additions, removals, host moves, issuer changes) one catalog after the
// other and checks every catalog built from its predecessor answers
// exactly like one built from scratch.
func TestIncrementalCatalogEqualsFullBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rev := int64(1)
	mk := func(i int) *Tenant {
		rev++
		id := fmt.Sprintf("t%02d", i)
		tn := &Tenant{
			TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindTenant},
			Metadata: ObjectMeta{Name: id, ResourceVersion: strconv.FormatInt(rev, 10)},
			Spec:     TenantSpec{Tier: []string{"free", "standard", "enterprise"}[rng.IntN(3)]},
		}
		// Hosts from a small pool, so conflicts happen.
		for range rng.IntN(3) {
			tn.Spec.Hosts = append(tn.Spec.Hosts, fmt.Sprintf("h%d.example.com", rng.IntN(300)))
		}
		if rng.IntN(3) == 0 {
			// Mostly shared, so that conflicts happen but do not reject a
			// tenant at nearly every step.
			tn.Spec.Auth.JWT = []JWTIssuer{{Issuer: fmt.Sprintf("https://idp%d.example", rng.IntN(4)), Shared: rng.IntN(8) != 0}}
		}
		return tn
	}
	current := map[string]*Tenant{}
	var prev *Catalog
	incrementalUsed := 0
	for step := 0; step < 400; step++ {
		for range 1 + rng.IntN(3) {
			i := rng.IntN(30)
			id := fmt.Sprintf("t%02d", i)
			if _, ok := current[id]; ok && rng.IntN(4) == 0 {
				delete(current, id)
			} else {
				current[id] = mk(i)
			}
		}
		var in []*Tenant
		for _, tn := range current {
			in = append(in, tn)
		}
		rng.Shuffle(len(in), func(a, b int) { in[a], in[b] = in[b], in[a] })
		input := Input{Revision: rev, Tenants: in}
		next := NewCatalog(input, prev)
		full := NewCatalog(input, nil)
		if prev != nil && len(prev.rejected) == 0 {
			incrementalUsed++
		}
		assertSameCatalog(t, step, next, full)
		assertChangedSince(t, step, next, prev)
		if _, ok := full.ChangedSince(prev); ok {
			t.Fatalf("step %d: a full build claims to know what changed", step)
		}
		prev = next
	}
	if incrementalUsed < 50 {
		t.Fatalf("the incremental path ran only %d times; the test does not exercise it", incrementalUsed)
	}
}

func assertSameCatalog(t *testing.T, step int, got, want *Catalog) {
	t.Helper()
	if !slices.Equal(got.TenantIDs(), want.TenantIDs()) {
		t.Fatalf("step %d: ids %v, want %v", step, got.TenantIDs(), want.TenantIDs())
	}
	for _, id := range want.TenantIDs() {
		a, _ := got.Tenant(id)
		b, _ := want.Tenant(id)
		if a.Metadata.ResourceVersion != b.Metadata.ResourceVersion || a.Spec.Tier != b.Spec.Tier {
			t.Fatalf("step %d: tenant %s differs", step, id)
		}
	}
	if len(got.hosts) != len(want.hosts) {
		t.Fatalf("step %d: %d hosts, want %d", step, len(got.hosts), len(want.hosts))
	}
	for h, owner := range want.hosts {
		if got.hosts[h] != owner {
			t.Fatalf("step %d: host %s owned by %q, want %q", step, h, got.hosts[h], owner)
		}
	}
	for _, m := range []struct{ got, want map[string][]string }{{got.issuers, want.issuers}, {got.sharedIssuers, want.sharedIssuers}} {
		if len(m.got) != len(m.want) {
			t.Fatalf("step %d: issuers %v, want %v", step, m.got, m.want)
		}
		for iss, ids := range m.want {
			g := slices.Sorted(slices.Values(m.got[iss]))
			w := slices.Sorted(slices.Values(ids))
			if !slices.Equal(g, w) {
				t.Fatalf("step %d: issuer %s has %v, want %v", step, iss, g, w)
			}
		}
	}
	if len(got.Rejected()) != len(want.Rejected()) {
		t.Fatalf("step %d: rejected %v, want %v", step, got.Rejected(), want.Rejected())
	}
}

// assertChangedSince: when next can name its changes since prev, every
// tenant it does not name is the very same object in both, and every one
// it names differs (changed, added or removed).
func assertChangedSince(t *testing.T, step int, next, prev *Catalog) {
	t.Helper()
	ids, ok := next.ChangedSince(prev)
	if !ok {
		return
	}
	named := map[string]bool{}
	for _, id := range ids {
		named[id] = true
	}
	all := map[string]bool{}
	for _, id := range next.TenantIDs() {
		all[id] = true
	}
	for _, id := range prev.TenantIDs() {
		all[id] = true
	}
	for id := range all {
		same := next.Unchanged(prev, id)
		if same && named[id] {
			t.Fatalf("step %d: %s named as changed but is the same object", step, id)
		}
		if !same && !named[id] {
			t.Fatalf("step %d: %s changed (or came or went) but ChangedSince does not name it", step, id)
		}
	}
	if other, ok := next.ChangedSince(next); ok {
		t.Fatalf("step %d: a catalog claims changes since itself: %v", step, other)
	}
}
