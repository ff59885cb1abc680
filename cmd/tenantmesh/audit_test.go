package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// writeTestAuditKey creates an audit key file for the CLI under test.
func writeTestAuditKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), store.AuditKeyFileName)
	if _, _, err := store.LoadOrCreateAuditKey(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func (c *cli) records() []store.AuditRecord {
	c.t.Helper()
	var recs []store.AuditRecord
	if err := json.Unmarshal([]byte(c.ok("audit", "list", "-o", "json")), &recs); err != nil {
		c.t.Fatal(err)
	}
	return recs
}

func (c *cli) putJSON(key string, v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.etcd.Put(context.Background(), testPrefix+key, string(b)); err != nil {
		c.t.Fatal(err)
	}
}

func wantFail(t *testing.T, r result, parts ...string) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Fatalf("stderr lacks %q:\n%s", p, r.stderr)
		}
	}
}

// rehash recomputes the hash of records[i:] after an edit, as an etcd
// writer without the key can, and moves audit-head.
func (c *cli) rehash(recs []store.AuditRecord, i int) {
	c.t.Helper()
	for j := i; j < len(recs); j++ {
		if j > 0 {
			recs[j].PrevHash = recs[j-1].Hash
		}
		recs[j].Hash = recordHash(c.t, recs[j])
		c.putJSON("audit/"+recs[j].ID, recs[j])
	}
	last := recs[len(recs)-1]
	c.putJSON("audit-head", map[string]any{"id": last.ID, "seq": last.Seq, "hash": last.Hash})
}

// recordHash is the chain hash of a record: SHA-256 of its JSON without
// hash and sig (the documented record format).
func recordHash(t *testing.T, r store.AuditRecord) string {
	t.Helper()
	r.Hash, r.Sig = "", ""
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(b)
}

func TestAuditCLIRewrittenAndRehashedChainFails(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	c.ok("tenant", "delete", "tenant-b")
	recs := c.records()
	recs[1].Label = "mallory"
	c.rehash(recs, 1)
	wantFail(t, c.run("", "audit", "verify"), "verification failed", recs[1].ID, "signature does not verify")
}

func TestAuditCLIDeletedTrailFails(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	ctx := context.Background()
	if _, err := c.etcd.Delete(ctx, testPrefix+"audit", clientv3.WithPrefix()); err != nil { // audit/ and audit-head
		t.Fatal(err)
	}
	wantFail(t, c.run("", "audit", "verify"), "trail is empty but the store holds 2 audited objects")
}

func TestAuditCLICheckpointDetectsDeletedTail(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml")
	c.ok("tenant", "apply", "-f", "testdata/tenants/tenant-b.yaml")
	cpFile := filepath.Join(t.TempDir(), "audit.jsonl")
	if out := c.ok("audit", "export", "--out", cpFile); out != "" {
		t.Fatalf("export --out printed %q", out)
	}
	if got := c.ok("audit", "verify", "--checkpoint", cpFile); !strings.Contains(got, "checkpoint of") || !strings.Contains(got, "(seq 2) is part of the trail") {
		t.Fatalf("verify --checkpoint: %q", got)
	}
	recs := c.records()
	if _, err := c.etcd.Delete(context.Background(), testPrefix+"audit/"+recs[1].ID); err != nil {
		t.Fatal(err)
	}
	c.putJSON("audit-head", map[string]any{"id": recs[0].ID, "seq": recs[0].Seq, "hash": recs[0].Hash})
	c.ok("audit", "verify") // what is left is a whole, signed chain
	wantFail(t, c.run("", "audit", "verify", "--checkpoint", cpFile), "ends at seq 1", "seq 2", "deleted")
	// Resuming the export into the same file is refused too.
	wantFail(t, c.run("", "audit", "export", "--out", cpFile), "no longer matches the last checkpoint")
}

func TestAuditCLIVerifyWithPublicKeyOnly(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml")
	pub := filepath.Join(t.TempDir(), "audit.pub")
	if err := os.WriteFile(pub, []byte(c.ok("audit", "public-key")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAuditKeyFile, "")
	wantFail(t, c.run("", "audit", "verify"), "no audit public key")
	if got := c.ok("--audit-public-key", pub, "audit", "verify"); !strings.Contains(got, "1 records, hash chain intact and signed") {
		t.Fatalf("verify with the public key: %q", got)
	}
	// Without the private key nothing can be written.
	wantFail(t, c.run("", "--audit-public-key", pub, "tenant", "apply", "-f", "testdata/tenants/tenant-b.yaml"), "no audit signing key", "--audit-key-file", envAuditKeyFile)
	if n := len(c.records()); n != 1 {
		t.Fatalf("%d records after the refused apply, want 1", n)
	}
}

// enableEtcdAuth turns on etcd authentication with a root user and alice,
// who may read and write the CLI's prefix.
func enableEtcdAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			t.Fatal(err)
		}
	}
	must(cli.RoleAdd(ctx, "root"))
	// etcd only needs root to exist to enable auth; no password spares
	// a bcrypt hash (slow under -race).
	must(cli.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}))
	must(cli.UserGrantRole(ctx, "root", "root"))
	must(cli.RoleAdd(ctx, "writer"))
	must(cli.RoleGrantPermission(ctx, "writer", testPrefix, clientv3.GetPrefixRangeEnd(testPrefix), clientv3.PermissionType(clientv3.PermReadWrite)))
	must(cli.UserAdd(ctx, "alice", "alice-password"))
	// The same password hashed at bcrypt's minimum cost: every client of
	// alice's authenticates, and etcd's default cost takes about a second
	// under -race, past the CLI's 3s dial timeout on a loaded machine.
	must(pb.NewAuthClient(cli.ActiveConnection()).UserChangePassword(ctx, &pb.AuthUserChangePasswordRequest{
		Name: "alice", HashedPassword: base64.StdEncoding.EncodeToString([]byte(aliceHashCost4)),
	}))
	must(cli.UserGrantRole(ctx, "alice", "writer"))
	must(cli.AuthEnable(ctx))
}

func TestAuditCLIActorIsTheEtcdUser(t *testing.T) {
	t.Setenv(envEtcdEndpoints, "")
	t.Setenv(envAuditKeyFile, writeTestAuditKey(t))
	root, e := etcdtest.Start(t)
	enableEtcdAuth(t, root)
	base := []string{"--etcd-endpoints", etcdtest.ClientURL(e), "--prefix", testPrefix, "--etcd-username", "alice", "--etcd-password", "alice-password"}
	run := func(args ...string) result { return runArgs("", append(append([]string{}, base...), args...)...) }
	if r := run("--actor", "the-ceo", "tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml"); r.code != 0 {
		t.Fatalf("apply as alice: %+v", r)
	}
	r := run("audit", "list", "-o", "json")
	var recs []store.AuditRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("audit list: %+v %v", r, err)
	}
	if recs[0].Actor != "etcd-user:alice" || recs[0].Label != "the-ceo" {
		t.Fatalf("actor %q label %q, want etcd-user:alice with label the-ceo", recs[0].Actor, recs[0].Label)
	}
}

func TestAuditCLIActorIsTheClientCertificate(t *testing.T) {
	e := startEtcdTLS(t)
	with := []string{"--etcd-endpoints", e.endpoint, "--etcd-ca", e.ca, "--etcd-cert", e.clientCert, "--etcd-key", e.clientKey, "--actor", "ops-bot"}
	if r := runArgs("", append(with, "tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml")...); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	r := runArgs("", append(with, "audit", "list", "-o", "json")...)
	var recs []store.AuditRecord
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("audit list: %+v %v", r, err)
	}
	if recs[0].Actor != "cert:CN=tenantmesh" || recs[0].Label != "ops-bot" {
		t.Fatalf("actor %q label %q, want cert:CN=tenantmesh with label ops-bot", recs[0].Actor, recs[0].Label)
	}
}

func TestAuditCLIReport(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	c.ok("apikey", "create", "tenant-a", "--name", "ci")
	edited := strings.Replace(readFile(t, "testdata/tenants/tenant-a.yaml"), "displayName: Tenant a", "displayName: Changed", 1)
	if r := c.run(edited, "--actor", "=HYPERLINK(\"x\")", "tenant", "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	c.ok("tenant", "delete", "tenant-b")

	var rep store.AuditReport
	if err := json.Unmarshal([]byte(c.ok("audit", "report", "--tenant", "tenant-a", "--since", "1h", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rep.Records {
		got = append(got, r.Action+" "+string(r.Kind)+" "+r.Label)
	}
	if want := `create Tenant alice|create APIKey alice|configure Tenant =HYPERLINK("x")`; strings.Join(got, "|") != want {
		t.Fatalf("report records %q, want %q", strings.Join(got, "|"), want)
	}
	if rep.Verification == nil || rep.Verification.Records != 5 || rep.Since == nil {
		t.Fatalf("report verification %+v since %v", rep.Verification, rep.Since)
	}

	rows, err := csv.NewReader(strings.NewReader(c.ok("audit", "report", "--tenant", "tenant-a", "-o", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(reportCSVHeader, ",") {
		t.Fatalf("csv: %q", rows)
	}
	if rows[1][4] != "create" || rows[1][5] != "Tenant" || rows[2][5] != "APIKey" || rows[3][3] != `'=HYPERLINK("x")` || rows[3][11] != rep.Records[2].Hash {
		t.Fatalf("csv rows %q", rows[1:])
	}

	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if err := json.Unmarshal([]byte(c.ok("audit", "report", "--tenant", "tenant-a", "--since", future, "-o", "json")), &rep); err != nil || len(rep.Records) != 0 {
		t.Fatalf("report since the future: %+v %v", rep.Records, err)
	}
	if r := c.run("", "audit", "report", "--tenant", "tenant-a", "--until", "yesterday-ish"); r.code != exitUsage {
		t.Fatalf("bad --until: %+v", r)
	}
	if r := c.run("", "tenant", "list", "-o", "csv"); r.code != exitUsage {
		t.Fatalf("-o csv outside audit report: %+v", r)
	}
	// A report is cut from a verified trail only.
	recs := c.records()
	recs[0].Label = "mallory"
	c.putJSON("audit/"+recs[0].ID, recs[0])
	wantFail(t, c.run("", "audit", "report", "--tenant", "tenant-a"), "verification failed, no report")
}

func TestAuditCLICompactNothingWithoutRetention(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "testdata/tenants")
	if got := c.ok("audit", "compact", "--dry-run"); got != "nothing to compact\n" {
		t.Fatalf("compact --dry-run: %q", got)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// aliceHashCost4 is bcrypt("alice-password") at cost 4 (bcrypt.MinCost).
const aliceHashCost4 = "$2a$04$RbRcvvUmGSiCjJLy5NHmqOjJb/Vo0MXCViWgI9XUK6UTO3pjlHFl."
