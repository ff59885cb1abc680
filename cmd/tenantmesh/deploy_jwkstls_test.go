package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// The sidecars' JWKS fetch over TLS (MeshConfig spec.controlPlaneAdminTLS,
// serve --admin-tls-*) in the deployments: followed from the MeshConfig to
// the translated tenantmesh-jwks cluster, to the CA file every sidecar
// mounts, and to the certificate the control plane's admin listener
// serves. These tests fail when a deployment goes back to fetching the
// keys that vouch for x-tenant-context in plain HTTP.

// cliEnv makes the test binary run as the tenantmesh CLI (TestMain), so a
// deploy/ script can be run with the real commands.
const cliEnv = "TENANTMESH_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(execute(newRootCmd(os.Stdin, os.Stdout, os.Stderr), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// jwksTLSOf translates the sidecar node of cat and returns its
// tenantmesh-jwks cluster's TLS context (nil: plain HTTP).
func jwksTLSOf(t *testing.T, cat *tenants.Catalog, node translate.Node) *tlsv3.UpstreamTlsContext {
	t.Helper()
	res, errs, err := translate.Translate(cat, node)
	if err != nil || len(errs) > 0 {
		t.Fatalf("sidecar %s/%s: translation failed: %v %v", node.Tenant, node.Service, err, errs)
	}
	for _, r := range res.Clusters {
		c := r.(*clusterv3.Cluster)
		if c.GetName() != translate.JWKSClusterName {
			continue
		}
		if c.GetTransportSocket() == nil {
			return nil
		}
		var ctx tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx); err != nil {
			t.Fatalf("cluster %s: %v", c.GetName(), err)
		}
		return &ctx
	}
	t.Fatalf("sidecar %s/%s receives no cluster %s", node.Tenant, node.Service, translate.JWKSClusterName)
	return nil
}

// adminSAN is the name the sidecars check on the admin certificate: the
// explicit san, else the host of controlPlaneAdmin.
func adminSAN(t *testing.T, s tenants.MeshConfigSpec) string {
	t.Helper()
	if s.ControlPlaneAdminTLS == nil {
		t.Fatal("MeshConfig has no spec.controlPlaneAdminTLS: the sidecars fetch the JWKS in plain HTTP")
	}
	if s.ControlPlaneAdminTLS.SAN != "" {
		return s.ControlPlaneAdminTLS.SAN
	}
	host, _, err := net.SplitHostPort(s.ControlPlaneAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return host
}

// checkJWKSCluster: the cluster is TLS, trusts caFile and checks san (as
// SAN and SNI).
func checkJWKSCluster(t *testing.T, who string, ctx *tlsv3.UpstreamTlsContext, caFile, san string) {
	t.Helper()
	if ctx == nil {
		t.Errorf("%s: cluster %s has no TLS transport socket: the JWKS travels in plain HTTP", who, translate.JWKSClusterName)
		return
	}
	vc := ctx.GetCommonTlsContext().GetValidationContext()
	if got := vc.GetTrustedCa().GetFilename(); got != caFile {
		t.Errorf("%s: cluster %s trusts %q, want %q", who, translate.JWKSClusterName, got, caFile)
	}
	m := vc.GetMatchTypedSubjectAltNames()
	if len(m) != 1 || m[0].GetMatcher().GetExact() != san || ctx.GetSni() != san {
		t.Errorf("%s: cluster %s checks SAN %v, SNI %q; want %s", who, translate.JWKSClusterName, m, ctx.GetSni(), san)
	}
}

// runCertsScript runs deploy/certs.sh with /tls moved to a temporary
// directory, `tenantmesh` the CLI under test and chown a no-op (it needs
// root), twice (the compose demo re-runs it on every start). It returns
// the directory that stands for /tls.
func runCertsScript(t *testing.T) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh to run deploy/certs.sh: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "tls")
	bin := filepath.Join(tmp, "bin")
	for _, d := range []string{root, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeTestFile(t, filepath.Join(bin, "tenantmesh"), "#!/bin/sh\nexec \""+self+"\" \"$@\"\n")
	if err := os.Chmod(filepath.Join(bin, "tenantmesh"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "chown() { :; }\n" + strings.ReplaceAll(readFile(t, filepath.Join(deployDir, "certs.sh")), "/tls", root)
	writeTestFile(t, filepath.Join(tmp, "certs.sh"), script)
	for run := 1; run <= 2; run++ {
		cmd := exec.Command(sh, filepath.Join(tmp, "certs.sh"))
		cmd.Env = append(os.Environ(), cliEnv+"=1", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "certs: done") {
			t.Fatalf("certs.sh run %d: %v\n%s", run, err, out)
		}
	}
	return root
}

// TestComposeJWKSOverTLS: serve's public admin listener is HTTPS with the
// server certificate of certs.sh; each sidecar's tenantmesh-jwks cluster
// (translated from meshconfig.yaml) is TLS, trusting a CA file in the
// volume every sidecar mounts, outside any identity's directory; and,
// with the files certs.sh really writes, that file is a world-readable CA
// certificate with no key beside it that verifies serve's admin
// certificate for the SAN the sidecars check.
func TestComposeJWKSOverTLS(t *testing.T) {
	w := loadComposeWorld(t)
	certs := certsScript(t)
	spec := w.mesh.Spec
	san := adminSAN(t, spec)
	caFile := spec.ControlPlaneAdminTLS.CAFile

	certFile, keyFile := flagValue(w.serveArgs, "admin-tls-cert"), flagValue(w.serveArgs, "admin-tls-key")
	if certFile == "" || keyFile == "" {
		t.Fatalf("serve has --admin-tls-cert %q --admin-tls-key %q: the public admin listener serves plain HTTP", certFile, keyFile)
	}
	server := certs[certDir(t, certFile)]
	if server == nil || server.kind != "server" || uidOf(server.owner) != "65532" || filepath.Dir(keyFile) != filepath.Dir(certFile) {
		t.Errorf("serve's admin certificate %s / %s: issued %+v; want a certs server directory owned by 65532 (the image's user)", certFile, keyFile, server)
	}
	if server != nil && !contains(server.dns, san) {
		t.Errorf("the admin certificate's --dns %v lacks %s, the SAN the sidecars check", server.dns, san)
	}

	// The CA file: in the tls volume, in no identity's directory (each
	// belongs to one uid, and holds a key) and not the CA's own.
	caDir := certDir(t, caFile)
	if c := certs[caDir]; c != nil {
		t.Errorf("controlPlaneAdminTLS.caFile %s is in the directory of %v: only that uid may read it", caFile, c.args)
	}
	for _, args := range scriptCommands(t, "certs.sh") {
		if len(args) > 1 && args[0] == "certs" && args[1] == "ca" && flagValue(args, "out") == caDir {
			t.Errorf("controlPlaneAdminTLS.caFile %s is in the CA's directory, beside its key", caFile)
		}
	}

	cat := tenants.NewCatalog(tenants.Input{Revision: 1, Mesh: w.mesh, Tenants: w.tenants}, nil)
	sidecars := 0
	for name, b := range w.bootstraps {
		node := translate.NodeFromProto(b.GetNode())
		if node.Role != translate.RoleSidecar {
			continue
		}
		sidecars++
		if !mountsTLSReadOnly(w.c.Services[name]) {
			t.Errorf("sidecar %s does not mount the tls volume: it has no %s", name, caFile)
		}
		checkJWKSCluster(t, "sidecar "+name, jwksTLSOf(t, cat, node), caFile, san)
	}
	if sidecars < 2 {
		t.Fatalf("found %d sidecars in the compose file, want 2", sidecars)
	}

	// What certs.sh really leaves in the volume.
	root := runCertsScript(t)
	inVolume := func(p string) string { return filepath.Join(root, strings.TrimPrefix(p, "/tls")) }
	st, err := os.Stat(inVolume(caFile))
	if err != nil {
		t.Fatalf("certs.sh writes no %s: %v", caFile, err)
	}
	if st.Mode().Perm()&0o004 == 0 {
		t.Errorf("%s has mode %v: the sidecars' uids (not its owner) cannot read it", caFile, st.Mode().Perm())
	}
	if dt, err := os.Stat(filepath.Dir(inVolume(caFile))); err != nil || dt.Mode().Perm()&0o005 != 0o005 {
		t.Errorf("the directory of %s is not readable and searchable by every uid (%v)", caFile, err)
	}
	entries, err := os.ReadDir(filepath.Dir(inVolume(caFile)))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data := readFile(t, filepath.Join(filepath.Dir(inVolume(caFile)), e.Name()))
		if strings.Contains(data, "PRIVATE KEY") {
			t.Errorf("%s holds a private key (%s), readable by every sidecar", caDir, e.Name())
		}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(readFile(t, inVolume(caFile)))) {
		t.Fatalf("%s holds no PEM certificate", caFile)
	}
	pair, err := tls.LoadX509KeyPair(inVolume(certFile), inVolume(keyFile))
	if err != nil {
		t.Fatalf("serve's admin certificate and key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	// What the sidecar's Envoy checks: the chain against trusted_ca, the
	// name against the SAN matcher.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: san, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("serve's admin certificate does not verify against %s for %s: %v", caFile, san, err)
	}
}

// TestComposeInitKeepsAdminTLS: init.sh applies meshconfig.yaml through
// `token dev-issuer --base`, whose output must keep controlPlaneAdminTLS.
func TestComposeInitKeepsAdminTLS(t *testing.T) {
	found := false
	for _, args := range scriptCommands(t, "init.sh") {
		if len(args) > 1 && args[0] == "token" && args[1] == "dev-issuer" {
			found = flagValue(args, "base") == "/deploy/meshconfig.yaml"
		}
	}
	if !found {
		t.Fatal("init.sh does not build its MeshConfig from /deploy/meshconfig.yaml with token dev-issuer --base")
	}
	dir := t.TempDir()
	r := runArgs("", "token", "dev-issuer", "--out", filepath.Join(dir, "issuer.pem"),
		"--issuer", "https://dev-issuer.tenantmesh.local", "--base", filepath.Join(deployDir, "meshconfig.yaml"))
	if r.code != 0 {
		t.Fatalf("token dev-issuer: exit %d: %s", r.code, r.stderr)
	}
	writeTestFile(t, filepath.Join(dir, "mesh.yaml"), r.stdout)
	docs, err := tenants.Load(filepath.Join(dir, "mesh.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := docs[0].Object.(*tenants.MeshConfig).Spec.ControlPlaneAdminTLS
	base, err := tenants.Load(filepath.Join(deployDir, "meshconfig.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := base[0].Object.(*tenants.MeshConfig).Spec.ControlPlaneAdminTLS
	if want == nil {
		t.Fatal("deploy/meshconfig.yaml has no spec.controlPlaneAdminTLS: the sidecars fetch the JWKS in plain HTTP")
	}
	if got == nil || *got != *want {
		t.Errorf("the MeshConfig init.sh applies has controlPlaneAdminTLS %+v, want %+v", got, want)
	}
}
