package store

import (
	"encoding/base64"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
)

// enableEtcdAuth turns on etcd authentication with a root user and a
// user alice who may read and write the test prefix.
func enableEtcdAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := ctxT(t)
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

func TestAuditActorIsTheEtcdUser(t *testing.T) {
	cli, e := etcdtest.Start(t)
	enableEtcdAuth(t, cli)
	cfg := ClientConfig{Endpoints: []string{etcdtest.ClientURL(e)}, Username: "alice", Password: "alice-password"}
	alice, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := alice.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	id, err := ResolveIdentity(ctxT(t), alice, cfg)
	if err != nil || id != "etcd-user:alice" {
		t.Fatalf("identity %q %v, want etcd-user:alice", id, err)
	}
	// serve's way: the identity is asked for at the first write.
	s := storeOn(alice, AuditOptions{Key: newTestAuditKey(t), IdentityFrom: NewIdentityResolver(alice, cfg)})
	if _, err := s.Apply(ctxT(t), decode(t, "a.yaml", tenantYAML("tenant-a", "A")), ApplyOptions{Actor: "the-ceo"}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.AuditList(ctxT(t), "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Actor != "etcd-user:alice" || recs[0].Label != "the-ceo" {
		t.Fatalf("records %+v, want actor etcd-user:alice with label the-ceo", recs)
	}

	// A user name is not an identity unless etcd checked it.
	open, e2 := etcdtest.Start(t)
	cfg2 := ClientConfig{Endpoints: []string{etcdtest.ClientURL(e2)}, Username: "alice", Password: "anything"}
	if id, err := ResolveIdentity(ctxT(t), open, cfg2); err != nil || id != "" {
		t.Fatalf("identity on etcd without auth %q %v, want none", id, err)
	}
}

// aliceHashCost4 is bcrypt("alice-password") at cost 4 (bcrypt.MinCost).
const aliceHashCost4 = "$2a$04$RbRcvvUmGSiCjJLy5NHmqOjJb/Vo0MXCViWgI9XUK6UTO3pjlHFl."
