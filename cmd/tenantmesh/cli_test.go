package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

const testPrefix = "/clitest/"

// cli runs tenantmesh commands in-process against one embedded etcd.
type cli struct {
	t        *testing.T
	endpoint string
	etcd     *clientv3.Client
}

func newCLI(t *testing.T) *cli {
	t.Setenv(envEtcdEndpoints, "")
	t.Setenv(envAuditKeyFile, writeTestAuditKey(t))
	c, e := etcdtest.Start(t)
	return &cli{t: t, endpoint: etcdtest.ClientURL(e), etcd: c}
}

type result struct {
	code           int
	stdout, stderr string
}

// run executes a command with the test's etcd and actor.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	full := append([]string{"--etcd-endpoints", c.endpoint, "--prefix", testPrefix, "--actor", "alice"}, args...)
	return runArgs(stdin, full...)
}

func runArgs(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := execute(newRootCmd(strings.NewReader(stdin), &out, &errb), args)
	return result{code, out.String(), errb.String()}
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("tenantmesh %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (c *cli) store() *store.Store {
	return store.New(c.etcd, store.Options{Prefix: testPrefix, Logger: quietLogger(&bytes.Buffer{})})
}

func TestTenantApplyGetListDelete(t *testing.T) {
	c := newCLI(t)
	if got, want := c.ok("tenant", "apply", "-f", "testdata/tenants"), "tenant/tenant-a created\ntenant/tenant-b created\n"; got != want {
		t.Fatalf("apply printed %q, want %q", got, want)
	}
	if got := c.ok("tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml"); got != "tenant/tenant-a unchanged\n" {
		t.Fatalf("re-apply printed %q", got)
	}
	list := c.ok("tenant", "list")
	for _, want := range []string{"NAME", "tenant-a", "tenant-b", "tenant-a.api.example.com", "enterprise"} {
		if !strings.Contains(list, want) {
			t.Errorf("tenant list lacks %q:\n%s", want, list)
		}
	}
	y := c.ok("tenant", "get", "tenant-a", "-o", "yaml")
	if !strings.Contains(y, "resourceVersion:") || !strings.Contains(y, "kind: Tenant") {
		t.Fatalf("get -o yaml:\n%s", y)
	}
	// What get prints can be edited and applied back.
	edited := strings.Replace(y, "displayName: Tenant a", "displayName: Edited", 1)
	if r := c.run(edited, "tenant", "apply", "-f", "-"); r.code != 0 || r.stdout != "tenant/tenant-a configured\n" {
		t.Fatalf("apply of edited get output: %+v", r)
	}
	// The same stale output again is refused.
	r := c.run(edited, "tenant", "apply", "-f", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "was modified since you read it") {
		t.Fatalf("stale apply: %+v", r)
	}
	var items struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.ok("tenant", "list", "-o", "json")), &items); err != nil || len(items.Items) != 2 {
		t.Fatalf("list -o json: %v %v", items, err)
	}
	if got := c.ok("tenant", "delete", "tenant-a"); got != "tenant/tenant-a deleted\n" {
		t.Fatalf("delete printed %q", got)
	}
	r = c.run("", "tenant", "get", "tenant-a")
	if r.code != 1 || !strings.Contains(r.stderr, "tenant/tenant-a: not found") {
		t.Fatalf("get after delete: %+v", r)
	}
	audit := c.ok("audit", "list", "--tenant", "tenant-a")
	if strings.Count(audit, "alice") != 3 || !strings.Contains(audit, "delete") {
		t.Fatalf("audit list --tenant tenant-a:\n%s", audit)
	}
	if got := c.ok("audit", "verify"); !strings.Contains(got, "hash chain intact") {
		t.Fatalf("audit verify: %q", got)
	}
}

func TestApplyOfInvalidManifestWritesNothing(t *testing.T) {
	c := newCLI(t)
	r := c.run("", "tenant", "apply", "-f", "testdata/bad.yaml")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	for _, want := range []string{"testdata/bad.yaml (document 2)", `Tenant "tenant-d"`, "spec.routes[0].upstream"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, r.stderr)
		}
	}
	resp, err := c.etcd.Get(context.Background(), testPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d keys written by a refused apply", resp.Count)
	}
}

func TestValidateWorksOffline(t *testing.T) {
	t.Setenv(envEtcdEndpoints, closedEndpoint(t))
	if r := runArgs("", "tenant", "validate", "-f", "testdata/tenants"); r.code != 0 || !strings.Contains(r.stdout, "tenant/tenant-a valid") {
		t.Fatalf("validate of good manifests: %+v", r)
	}
	r := runArgs("", "tenant", "validate", "-f", "testdata/bad.yaml")
	if r.code != 1 || !strings.Contains(r.stderr, "spec.routes[0].upstream") {
		t.Fatalf("validate of a bad manifest: %+v", r)
	}
}

func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestEtcdDownIsAUserErrorNamingTheEndpoint(t *testing.T) {
	ep := closedEndpoint(t)
	r := runArgs("", "--etcd-endpoints", ep, "tenant", "apply", "-f", "testdata/tenants")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"cannot reach etcd at " + ep, "tenantmesh serve"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q: %s", want, r.stderr)
		}
	}
	// The environment variable is honoured the same way.
	t.Setenv(envEtcdEndpoints, ep)
	if r := runArgs("", "tenant", "list"); r.code != 1 || !strings.Contains(r.stderr, ep) {
		t.Fatalf("with %s: %+v", envEtcdEndpoints, r)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"tenant", "list", "--no-such-flag"},
		{"tenant", "get"},
		{"tenant", "frobnicate"},
		{"frobnicate"},
		{"-o", "xml", "version"},
		{"apikey", "revoke", "tenant-a"},
	} {
		if r := runArgs("", args...); r.code != 2 {
			t.Errorf("tenantmesh %v: exit %d, want 2 (stderr %q)", args, r.code, r.stderr)
		}
	}
}

func TestAPIKeyCreateListRevoke(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	var created struct {
		ID, Key, Tenant string
		ExpiresAt       *string
	}
	out := c.ok("apikey", "create", "tenant-a", "--name", "ci", "--expires", "720h", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create -o json %q: %v", out, err)
	}
	if created.ID == "" || !strings.HasPrefix(created.Key, "tmk_"+created.ID+"_") || created.ExpiresAt == nil {
		t.Fatalf("created = %+v", created)
	}
	list := c.ok("apikey", "list", "tenant-a")
	if !strings.Contains(list, created.ID) || !strings.Contains(list, "active") || strings.Contains(list, created.Key) {
		t.Fatalf("apikey list:\n%s", list)
	}
	if got := c.ok("apikey", "revoke", "tenant-a", created.ID); got != "apikey/"+created.ID+" revoked\n" {
		t.Fatalf("revoke printed %q", got)
	}
	if list := c.ok("apikey", "list", "tenant-a"); !strings.Contains(list, "revoked") {
		t.Fatalf("apikey list after revoke:\n%s", list)
	}
	if r := c.run("", "apikey", "create", "nobody"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("key for unknown tenant: %+v", r)
	}
	table := c.ok("apikey", "create", "tenant-b")
	if !strings.Contains(table, "key: tmk_") {
		t.Fatalf("create table output: %q", table)
	}
}

func TestAuditVerifyFailsOnTampering(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	c.ok("tenant", "delete", "tenant-b")
	recs, err := c.store().AuditList(context.Background(), "")
	if err != nil || len(recs) != 3 {
		t.Fatalf("audit records: %v %v", recs, err)
	}
	rec := recs[1]
	rec.Actor = "mallory"
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.etcd.Put(context.Background(), testPrefix+"audit/"+rec.ID, string(b)); err != nil {
		t.Fatal(err)
	}
	r := c.run("", "audit", "verify")
	if r.code != 1 || !strings.Contains(r.stderr, rec.ID) {
		t.Fatalf("verify after tampering: %+v", r)
	}
}

func TestTenantGetShowsStoredStatus(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	err := c.store().WriteStatus(context.Background(), tenants.Status{Tenant: "tenant-a", State: tenants.StateRejected, Revision: 7, Message: `spec.hosts: host "x" already belongs to tenant "tenant-b"`})
	if err != nil {
		t.Fatal(err)
	}
	out := c.ok("tenant", "get", "tenant-a")
	for _, want := range []string{"rejected", "Status: rejected (revision 7", "already belongs to tenant"} {
		if !strings.Contains(out, want) {
			t.Errorf("tenant get lacks %q:\n%s", want, out)
		}
	}
	if y := c.ok("tenant", "get", "tenant-a", "-o", "yaml"); !strings.HasPrefix(y, "# status: rejected") {
		t.Errorf("tenant get -o yaml does not start with the status:\n%s", y)
	}
}

func TestDiffTierAndMeshConfig(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml")
	edited := strings.Replace(readFile(t, "testdata/tenants/tenant-a.yaml"), "displayName: Tenant a", "displayName: Changed", 1)
	r := c.run(edited, "tenant", "diff", "-f", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "-  displayName: Tenant a") || !strings.Contains(r.stdout, "+  displayName: Changed") {
		t.Fatalf("diff: %+v", r)
	}
	gold := "apiVersion: tenantmesh.io/v1alpha1\nkind: Tier\nmetadata: {name: gold}\nspec: {maxConcurrentRequests: 5}\n"
	if got := c.run(gold, "tier", "apply", "-f", "-"); got.code != 0 || got.stdout != "tier/gold created\n" {
		t.Fatalf("tier apply: %+v", got)
	}
	if r := c.run(edited, "tier", "apply", "-f", "-"); r.code != 1 || !strings.Contains(r.stderr, "tenantmesh tenant apply") {
		t.Fatalf("tier apply of a tenant: %+v", r)
	}
	c.run(strings.Replace(edited, "tier: enterprise", "tier: gold", 1), "tenant", "apply", "-f", "-")
	if r := c.run("", "tier", "delete", "gold"); r.code != 1 || !strings.Contains(r.stderr, "tenant-a") {
		t.Fatalf("delete of a tier in use: %+v", r)
	}
	if out := c.ok("tier", "list"); !strings.Contains(out, "gold") {
		t.Fatalf("tier list:\n%s", out)
	}
	if out := c.ok("meshconfig", "get"); !strings.Contains(out, "edgePort: 10000") {
		t.Fatalf("meshconfig get shows no defaults:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	if r := runArgs("", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "tenantmesh ") {
		t.Fatalf("version: %+v", r)
	}
}

func TestTenantListAndGetShowUndecodableTenant(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	ctx := context.Background()
	// Written by hand, bypassing validation; the watch would record this status.
	if _, err := c.etcd.Put(ctx, testPrefix+"tenants/tenant-b", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"tenant-b"},"spec":{"displayNme":"x"}}`); err != nil {
		t.Fatal(err)
	}
	if err := c.store().WriteStatus(ctx, tenants.Status{Tenant: "tenant-b", State: tenants.StateInvalid, Revision: 9, Message: `unknown field "displayNme"`}); err != nil {
		t.Fatal(err)
	}
	list := c.ok("tenant", "list")
	if !strings.Contains(list, "tenant-a") || !regexp.MustCompile(`tenant-b\s+\?.*invalid`).MatchString(list) {
		t.Fatalf("tenant list:\n%s", list)
	}
	r := c.run("", "tenant", "get", "tenant-b")
	if r.code != 1 || !strings.Contains(r.stderr, "# status: invalid") || !strings.Contains(r.stderr, "stored value is invalid") {
		t.Fatalf("get of an undecodable tenant: %+v", r)
	}
}

// One document that does not decode hides nothing: apply (and validate,
// offline) report every problem of every document of every file, each
// with its field path, and apply writes nothing.
func TestApplyReportsEveryProblemAtOnce(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	writeFile(t, dir+"/a.yaml", `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-x}
spec: {tier: free, bogusField: 1}
--- # the second tenant
apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-y}
spec: {tier: platinum}
`)
	writeFile(t, dir+"/b.json", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"tenant-z"},"spec":{"tier":"free","tier":"enterprise"}}`)
	want := []string{
		dir + `/a.yaml (document 1): Tenant "tenant-x": spec.bogusField: unknown field`,
		dir + `/a.yaml (document 2): Tenant "tenant-y": spec.tier: unknown tier "platinum"`,
		dir + `/b.json (document 1): Tenant "tenant-z": spec.tier: given twice`,
	}
	check := func(what string, r result) {
		t.Helper()
		if r.code != 1 {
			t.Fatalf("%s: exit %d, want 1: %+v", what, r.code, r)
		}
		last := -1
		for _, w := range want {
			i := strings.Index(r.stderr, w)
			if i < 0 || i < last {
				t.Errorf("%s: stderr lacks %q (or out of order):\n%s", what, w, r.stderr)
			}
			last = i
		}
	}
	check("apply", c.run("", "tenant", "apply", "-f", dir+"/a.yaml", "-f", dir+"/b.json"))
	check("validate", c.run("", "tenant", "validate", "-f", dir))
	resp, err := c.etcd.Get(context.Background(), testPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d keys written by a refused apply", resp.Count)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
