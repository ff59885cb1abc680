package main

import (
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/internal/testcerts"
)

// etcdTLS is an etcd that requires client certificates, and the files a
// client needs.
type etcdTLS struct {
	endpoint                  string
	ca, clientCert, clientKey string
	// otherCA signed strangerCert/Key, a client etcd does not trust, and
	// is not the CA of etcd's server certificate.
	otherCA, strangerCert, strangerKey string
}

func startEtcdTLS(t *testing.T) etcdTLS {
	t.Helper()
	t.Setenv(envEtcdEndpoints, "")
	t.Setenv(envAuditKeyFile, writeTestAuditKey(t))
	dir := t.TempDir()
	ca, other := testcerts.NewCA(t, "etcd CA"), testcerts.NewCA(t, "other CA")
	srvCert, srvKey := ca.WriteLeaf(t, dir, "etcd-server", testcerts.Loopback("etcd"))
	var f etcdTLS
	f.ca, f.otherCA = ca.WriteCA(t, dir, "ca.crt"), other.WriteCA(t, dir, "other-ca.crt")
	f.clientCert, f.clientKey = ca.WriteLeaf(t, dir, "client", testcerts.Leaf{CommonName: "tenantmesh", Client: true})
	f.strangerCert, f.strangerKey = other.WriteLeaf(t, dir, "stranger", testcerts.Leaf{CommonName: "stranger", Client: true})
	_, f.endpoint = etcdtest.StartTLS(t, etcdtest.TLSFiles{Cert: srvCert, Key: srvKey, ClientCA: f.ca})
	return f
}

func TestCLIEtcdClientTLS(t *testing.T) {
	e := startEtcdTLS(t)
	flags := func(extra ...string) []string {
		return append([]string{"--etcd-endpoints", e.endpoint}, extra...)
	}
	with := flags("--etcd-ca", e.ca, "--etcd-cert", e.clientCert, "--etcd-key", e.clientKey)
	if r := runArgs("", append(with, "tenant", "apply", "-f", "testdata/tenants/tenant-a.yaml")...); r.code != 0 || r.stdout != "tenant/tenant-a created\n" {
		t.Fatalf("apply with the client certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runArgs("", append(with, "tenant", "list")...); r.code != 0 || !strings.Contains(r.stdout, "tenant-a") {
		t.Fatalf("list with the client certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Each misconfiguration fails with what is wrong and which flag fixes
	// it, not with "cannot reach etcd, start tenantmesh serve".
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"no TLS flags", flags(), []string{"serves TLS", "--etcd-ca"}},
		{"CA but no client certificate", flags("--etcd-ca", e.ca), []string{"requires a client certificate", "--etcd-cert and --etcd-key"}},
		{"client certificate of a CA etcd does not trust", flags("--etcd-ca", e.ca, "--etcd-cert", e.strangerCert, "--etcd-key", e.strangerKey),
			[]string{"refused the client certificate", e.strangerCert}},
		{"wrong CA for etcd's server certificate", flags("--etcd-ca", e.otherCA, "--etcd-cert", e.clientCert, "--etcd-key", e.clientKey),
			[]string{"not signed by a CA of --etcd-ca", e.otherCA}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runArgs("", append(c.args, "tenant", "list")...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			for _, w := range append(c.want, e.endpoint) {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "tenantmesh serve") {
				t.Errorf("a TLS problem reported as a missing etcd:\n%s", r.stderr)
			}
		})
	}
}
