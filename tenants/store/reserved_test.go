package store

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
)

const meshYAML = `apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
  platformHosts: [%s]
  jwt:
  - issuer: https://login.platform
    jwksUri: https://login.platform/jwks
    shared: %t
`

// tenantWith is a valid tenant with the given hosts and issuers (an
// issuer "iss!" is listed with shared: true).
func tenantWith(id string, hosts []string, issuers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\nspec:\n  tier: free\n  hosts: [%s]\n", id, strings.Join(hosts, ", "))
	if len(issuers) > 0 {
		b.WriteString("  auth:\n    jwt:\n")
		for _, iss := range issuers {
			iss, shared := strings.CutSuffix(iss, "!")
			fmt.Fprintf(&b, "    - {issuer: %q, jwksUri: %q, shared: %t}\n", iss, iss+"/jwks", shared)
		}
	}
	return b.String()
}

// etcdState is every key below the test prefix with its mod revision, and
// the store's revision.
type etcdState struct {
	rev  int64
	keys map[string]int64
}

func readState(t *testing.T, cli *clientv3.Client) etcdState {
	t.Helper()
	resp, err := cli.Get(ctxT(t), testPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	st := etcdState{rev: resp.Header.Revision, keys: map[string]int64{}}
	for _, kv := range resp.Kvs {
		st.keys[string(kv.Key)] = kv.ModRevision
	}
	return st
}

// refused applies yaml, wants it refused with an error containing every
// want, and checks that nothing at all was written: no object, no claim,
// no audit record.
func refused(t *testing.T, s *Store, before etcdState, yaml string, want ...string) {
	t.Helper()
	_, err := s.Apply(ctxT(t), decode(t, "claim.yaml", yaml), ApplyOptions{Actor: "tester"})
	if err == nil {
		t.Fatalf("apply accepted:\n%s", yaml)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	after := readState(t, s.cli)
	if after.rev != before.rev || !maps.Equal(after.keys, before.keys) {
		t.Fatalf("a refused apply wrote to etcd: revision %d → %d, keys %v → %v", before.rev, after.rev, before.keys, after.keys)
	}
}

// waitStatus waits for tenant id's status to reach state with a message
// containing want.
func waitStatus(t *testing.T, s *Store, id, state, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.GetStatus(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if st != nil && st.State == state && strings.Contains(st.Message, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s = %+v, want %s mentioning %q", id, st, state, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPlatformHostsCannotBeClaimed(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, fmt.Sprintf(meshYAML, "api.example.com", false))
	mustApply(t, s, tenantWith("tenant-a", []string{"a.example.com"}))
	before := readState(t, cli)

	refused(t, s, before, tenantWith("tenant-b", []string{"b.example.com", "API.example.com"}),
		`claim.yaml (document 1): Tenant "tenant-b": spec.hosts[1]: "API.example.com" is a platform host (MeshConfig spec.platformHosts)`)
	// The same when the MeshConfig comes in the same apply.
	refused(t, s, before, fmt.Sprintf(meshYAML, "api.example.com, api2.example.com", false)+"---\n"+tenantWith("tenant-b", []string{"api2.example.com"}),
		`claim.yaml (document 2): Tenant "tenant-b": spec.hosts[0]: "api2.example.com" is a platform host (MeshConfig spec.platformHosts)`)
	// An update of an existing tenant too.
	refused(t, s, before, tenantWith("tenant-a", []string{"a.example.com", "api.example.com"}),
		`spec.hosts[1]: "api.example.com" is a platform host`)

	// Written by hand, the squatter is left out of the catalog with a
	// rejected status; the other tenant is served.
	w := startWatch(t, s, 0)
	if _, err := cli.Put(ctx, testPrefix+"tenants/squatter",
		`{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"squatter"},"spec":{"hosts":["api.example.com"]}}`); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, "squatter", tenants.StateRejected, `spec.hosts[0]: "api.example.com" is a platform host (MeshConfig spec.platformHosts)`)
	c := w.waitFor(t, "tenant-a is served", func(c *tenants.Catalog) bool { _, ok := c.Tenant("tenant-a"); return ok })
	if _, ok := c.Tenant("squatter"); ok {
		t.Fatal("the squatter is in the catalog")
	}
	if _, ok := c.TenantByHost("api.example.com"); ok {
		t.Fatal("a tenant owns the platform host")
	}
}

// A MeshConfig that starts reserving a host a tenant holds is applied;
// that tenant is rejected with a status saying why, the others stay.
func TestMeshConfigReservingAHeldHostRejectsThatTenantOnly(t *testing.T) {
	s, _ := newTestStore(t)
	mustApply(t, s, tenantWith("tenant-a", []string{"api.example.com", "a.example.com"})+"---\n"+tenantWith("tenant-b", []string{"b.example.com"}))
	w := startWatch(t, s, 0)
	w.waitFor(t, "both tenants", func(c *tenants.Catalog) bool { return c.Len() == 2 })

	mustApply(t, s, fmt.Sprintf(meshYAML, "api.example.com", false))
	c := w.waitFor(t, "tenant-a left out", func(c *tenants.Catalog) bool { _, ok := c.Tenant("tenant-a"); return !ok })
	if _, ok := c.Tenant("tenant-b"); !ok || c.Len() != 1 {
		t.Fatalf("tenant-b must stay, catalog holds %v", c.TenantIDs())
	}
	if _, ok := c.TenantByHost("a.example.com"); ok {
		t.Fatal("the rejected tenant still owns its other host")
	}
	waitStatus(t, s, "tenant-a", tenants.StateRejected, `spec.hosts[0]: "api.example.com" is a platform host (MeshConfig spec.platformHosts)`)

	// Giving the host up brings the tenant back.
	mustApply(t, s, tenantWith("tenant-a", []string{"a.example.com"}))
	w.waitFor(t, "tenant-a back", func(c *tenants.Catalog) bool { _, ok := c.Tenant("tenant-a"); return ok && c.Len() == 2 })
}

func TestIssuersBelongToOneTenantUnlessShared(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, fmt.Sprintf(meshYAML, "api.example.com", false))
	mustApply(t, s, tenantWith("tenant-a", nil, "https://idp.a"))
	before := readState(t, cli)

	refused(t, s, before, tenantWith("tenant-b", nil, "https://idp.b", "https://idp.a"),
		`claim.yaml (document 1): Tenant "tenant-b": spec.auth.jwt[1].issuer: issuer "https://idp.a" already belongs to tenant "tenant-a"`)
	refused(t, s, before, tenantWith("tenant-b", nil, "https://idp.a!"),
		`spec.auth.jwt[0].issuer: issuer "https://idp.a" already belongs to tenant "tenant-a", which does not share it`)
	refused(t, s, before, tenantWith("tenant-b", nil, "https://login.platform"),
		`spec.auth.jwt[0].issuer: "https://login.platform" is a platform issuer (MeshConfig spec.jwt[0]), which is not shared`)
	refused(t, s, before, tenantWith("tenant-b", nil, "https://login.platform!"),
		`spec.auth.jwt[0].issuer: "https://login.platform" is a platform issuer (MeshConfig spec.jwt[0]), which is not shared`)
	// Two tenants of one apply.
	refused(t, s, before, tenantWith("tenant-b", nil, "https://idp.c")+"---\n"+tenantWith("tenant-c", nil, "https://idp.c"),
		`claim.yaml (document 2): Tenant "tenant-c": spec.auth.jwt[0].issuer: issuer "https://idp.c" is also listed by tenant "tenant-b" (claim.yaml document 1)`)

	// Both sides share: accepted.
	mustApply(t, s, tenantWith("tenant-a", nil, "https://idp.a!"))
	mustApply(t, s, tenantWith("tenant-b", nil, "https://idp.a!"))
	before = readState(t, cli)
	refused(t, s, before, tenantWith("tenant-c", nil, "https://idp.a"),
		`issuer "https://idp.a" is shared by tenant(s) tenant-a, tenant-b: set shared: true to share it too`)
	// A sharer cannot take the issuer back for itself.
	refused(t, s, before, tenantWith("tenant-a", nil, "https://idp.a"),
		`issuer "https://idp.a" is shared by tenant(s) tenant-b`)
	mustApply(t, s, fmt.Sprintf(meshYAML, "api.example.com", true))
	mustApply(t, s, tenantWith("tenant-d", nil, "https://login.platform!"))

	// Written by hand: the newer tenant is rejected, with a status.
	w := startWatch(t, s, 0)
	for id, iss := range map[string]string{"hand-a": "https://idp.a", "hand-p": "https://login.platform"} {
		v := fmt.Sprintf(`{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":%q},"spec":{"auth":{"jwt":[{"issuer":%q,"jwksUri":"https://x/jwks"}]}}}`, id, iss)
		if _, err := cli.Put(ctx, testPrefix+"tenants/"+id, v); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, s, "hand-a", tenants.StateRejected, `spec.auth.jwt[0].issuer: issuer "https://idp.a" is shared by tenant(s) tenant-a, tenant-b`)
	waitStatus(t, s, "hand-p", tenants.StateRejected, `spec.auth.jwt[0].issuer: "https://login.platform" is a platform issuer (MeshConfig spec.jwt[0]): set shared: true`)
	c := w.waitFor(t, "the applied tenants", func(c *tenants.Catalog) bool { return c.Len() == 3 })
	for _, id := range []string{"tenant-a", "tenant-b", "tenant-d"} {
		if _, ok := c.Tenant(id); !ok {
			t.Errorf("%s is not in the catalog: %v", id, c.TenantIDs())
		}
	}

	// Deleting the sharers releases the claim.
	for _, id := range []string{"hand-a", "hand-p", "tenant-a", "tenant-b", "tenant-d"} {
		if err := s.Delete(ctx, tenants.KindTenant, id, "tester"); err != nil {
			t.Fatal(err)
		}
	}
	if n := keyCount(t, cli, issuersDir); n != 0 {
		t.Fatalf("%d issuer claims left after every holder was deleted", n)
	}
	mustApply(t, s, tenantWith("tenant-c", nil, "https://idp.a"))
}
