package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// writeTenants writes n tenant manifests, one file each, into a new
// directory.
func writeTenants(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		id := fmt.Sprintf("tenant-%03d", i)
		y := fmt.Sprintf(`apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: %[1]s}
spec:
  displayName: T%[2]d
  hosts: [%[1]s.example.com]
  routes:
    - {name: api, match: {pathPrefix: /api/}, upstream: api}
  upstreams:
    - {name: api, endpoints: [{address: %[1]s-api, port: 8080}]}
`, id, i)
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestApplyOfADirectoryBiggerThanATransaction(t *testing.T) {
	c := newCLI(t)
	dir := writeTenants(t, 200)
	r := c.run("", "tenant", "apply", "-f", dir)
	if r.code != 0 {
		t.Fatalf("apply of 200 tenants: exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, " created\n"); n != 200 || !strings.HasPrefix(r.stdout, "tenant/tenant-000 created\n") {
		t.Fatalf("%d created lines:\n%.300s", n, r.stdout)
	}
	// Not a terminal: no progress line.
	if r.stderr != "" {
		t.Fatalf("stderr of a non-terminal apply: %q", r.stderr)
	}
	if got := c.ok("tenant", "apply", "-f", dir); strings.Count(got, " unchanged\n") != 200 {
		t.Fatalf("re-apply:\n%.300s", got)
	}
}

func TestApplyAtomicRefusesWhatDoesNotFit(t *testing.T) {
	c := newCLI(t)
	r := c.run("", "tenant", "apply", "--atomic", "-f", writeTenants(t, 200))
	if r.code != 1 || !strings.Contains(r.stderr, "operations in one etcd transaction") || !strings.Contains(r.stderr, "nothing was written") {
		t.Fatalf("atomic apply of 200 tenants: %+v", r)
	}
	resp, err := c.etcd.Get(context.Background(), testPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d keys written by a refused atomic apply", resp.Count)
	}
}

func TestProgressText(t *testing.T) {
	for _, tc := range []struct {
		done, total int
		elapsed     time.Duration
		want        string
	}{
		{0, 100, 0, "applied 0/100 objects"},
		{50, 200, 2 * time.Second, "applied 50/200 objects, 25/s, about 6s left"},
		{200, 200, 4 * time.Second, "applied 200/200 objects, 50/s"},
	} {
		if got := progressText(tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("progressText(%d, %d, %s) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	if report, _ := newProgress(&strings.Builder{}); report != nil {
		t.Fatal("progress reported to a non-terminal writer")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if report, _ := newProgress(f); report != nil {
		t.Fatal("progress reported to a regular file")
	}
}

func TestProgressLineUpdatesInPlace(t *testing.T) {
	var b strings.Builder
	now := time.Unix(0, 0)
	p := &progressLine{w: &b, now: func() time.Time { return now }, start: now}
	now = now.Add(time.Second)
	p.report(10, 20)
	p.report(15, 20) // within 100 ms of the last: skipped
	now = now.Add(time.Second)
	p.report(20, 20)
	p.finish()
	want := "\rapplied 10/20 objects, 10/s, about 1s left\x1b[K\rapplied 20/20 objects, 10/s\x1b[K\n"
	if b.String() != want {
		t.Fatalf("progress output %q, want %q", b.String(), want)
	}
}
