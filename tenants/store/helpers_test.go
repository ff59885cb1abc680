package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/tenants"
)

const testPrefix = "/test/v1/"

func newTestStore(t *testing.T) (*Store, *clientv3.Client) {
	t.Helper()
	s, cli, _ := newTestStoreEtcd(t)
	return s, cli
}

func newTestStoreEtcd(t *testing.T) (*Store, *clientv3.Client, *embed.Etcd) {
	t.Helper()
	cli, e := etcdtest.Start(t)
	s := New(cli, Options{Prefix: testPrefix, Logger: slog.New(slog.NewTextHandler(testLogOut, nil)), Audit: AuditOptions{Key: newTestAuditKey(t)}})
	return s, cli, e
}

// tenantYAML returns a valid tenant manifest.
func tenantYAML(id, displayName string) string {
	return fmt.Sprintf(`apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata:
  name: %[1]s
spec:
  displayName: %[2]s
  tier: enterprise
  hosts: [%[1]s.api.example.com]
  routes:
    - name: executive
      match: {pathPrefix: /api/executive/}
      upstream: executive
  upstreams:
    - name: executive
      endpoints: [{address: %[1]s-executive, port: 8080}]
`, id, displayName)
}

func decode(t *testing.T, file, data string) []tenants.Document {
	t.Helper()
	docs, err := tenants.Decode(file, []byte(data))
	if err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	return docs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustApply(t *testing.T, s *Store, yaml string) *ApplyResult {
	t.Helper()
	res, err := s.Apply(ctxT(t), decode(t, "test.yaml", yaml), ApplyOptions{Actor: "tester"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func outcomes(r *ApplyResult) string {
	var parts []string
	for _, o := range r.Objects {
		parts = append(parts, fmt.Sprintf("%s/%s %s", kindNoun(o.Kind), o.Name, o.Outcome))
	}
	return strings.Join(parts, ", ")
}

// keyCount counts keys under the store prefix plus dir.
func keyCount(t *testing.T, cli *clientv3.Client, dir string) int64 {
	t.Helper()
	resp, err := cli.Get(ctxT(t), testPrefix+dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// testLogOut receives the stores' logs; point it at os.Stderr to debug.
var testLogOut io.Writer = io.Discard
