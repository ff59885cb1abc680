package controlplane

import (
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/internal/etcdtest"
	"github.com/tenantmesh/tenantmesh/internal/testcerts"
)

// serve against an etcd that requires client certificates: with
// --etcd-ca/--etcd-cert/--etcd-key it syncs (the preload is written to and
// read back from that etcd); without the client certificate /readyz says
// that is what is missing, not merely that etcd is unreachable.
func TestRunWithEtcdClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "etcd CA")
	srvCert, srvKey := ca.WriteLeaf(t, dir, "etcd", testcerts.Loopback("etcd"))
	caFile := ca.WriteCA(t, dir, "ca.crt")
	cliCert, cliKey := ca.WriteLeaf(t, dir, "client", testcerts.Leaf{CommonName: "tenantmesh", Client: true})
	_, ep := etcdtest.StartTLS(t, etcdtest.TLSFiles{Cert: srvCert, Key: srvKey, ClientCA: caFile})

	t.Run("client certificate", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.EtcdEndpoints, cfg.Preload = []string{ep}, "testdata/preload-a"
		cfg.EtcdCA, cfg.EtcdCert, cfg.EtcdKey = caFile, cliCert, cliKey
		startRun(t, cfg)
		eventually(t, "http://"+cfg.AdminListen+"/readyz", "ready over TLS", func(r httpResult) bool { return r.code == 200 })
		if r, err := get("http://" + cfg.AdminPrivateListen + "/debug/catalog"); err != nil || !strings.Contains(r.body, `"id": "tenant-a"`) {
			t.Fatalf("/debug/catalog: %v %q", err, r.body)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.EtcdEndpoints, cfg.EtcdCA = []string{ep}, caFile
		startRun(t, cfg)
		eventually(t, "http://"+cfg.AdminListen+"/readyz", "503 naming the missing client certificate", func(r httpResult) bool {
			return r.code == 503 && strings.Contains(r.body, "requires a client certificate") && strings.Contains(r.body, "--etcd-cert")
		})
	})
}
