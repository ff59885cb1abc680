package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// quickstart is README.md's multi-host quickstart section.
func quickstart(t *testing.T) string {
	t.Helper()
	readme := readFile(t, "../../README.md")
	i := strings.Index(readme, "### Multi-host quickstart")
	if i < 0 {
		t.Fatal("README.md has no multi-host quickstart")
	}
	s := readme[i:]
	if j := strings.Index(s, "\n## "); j > 0 {
		s = s[:j]
	}
	return s
}

// quickstartCommands are its tenantmesh command lines without
// "tenantmesh" (continuations joined, redirections and comments cut).
func quickstartCommands(section string) [][]string {
	var out [][]string
	for _, line := range strings.Split(strings.ReplaceAll(section, "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "tenantmesh ") {
			continue
		}
		line, _, _ = strings.Cut(line, ">")
		line, _, _ = strings.Cut(line, "#")
		out = append(out, strings.Fields(line)[1:])
	}
	return out
}

// TestREADMEMultiHostQuickstartJWKSOverTLS: the quickstart's serve line
// serves the public admin listener over HTTPS off loopback, its mesh.yaml
// makes the sidecars verify it (a SAN its server certificate carries, the
// admin port serve listens on), and its sidecar bootstrap trusts the CA
// file mesh.yaml names.
func TestREADMEMultiHostQuickstartJWKSOverTLS(t *testing.T) {
	section := quickstart(t)
	var serve, sidecar []string
	certsOut := map[string][]string{} // certs server --out → its --dns and --ip
	for _, args := range quickstartCommands(section) {
		checkCommandLine(t, "README multi-host quickstart", args)
		switch {
		case args[0] == "serve":
			serve = args
		case len(args) > 1 && args[0] == "certs" && args[1] == "server":
			certsOut[flagValue(args, "out")] = append(strings.Split(flagValue(args, "dns"), ","), strings.Split(flagValue(args, "ip"), ",")...)
		case len(args) > 1 && args[0] == "envoy" && flagValue(args, "role") == "sidecar":
			sidecar = args
		}
	}
	if serve == nil || sidecar == nil {
		t.Fatalf("the quickstart lacks a serve line (%v) or a sidecar bootstrap (%v)", serve, sidecar)
	}
	listen := flagValue(serve, "admin-listen")
	host, adminPort, err := net.SplitHostPort(listen)
	if err != nil || host == "" || net.ParseIP(host).IsLoopback() {
		t.Errorf("serve --admin-listen %q: sidecars on other hosts cannot reach it", listen)
	}
	certFile := flagValue(serve, "admin-tls-cert")
	if certFile == "" || flagValue(serve, "admin-tls-key") == "" {
		t.Fatal("the quickstart's serve has no --admin-tls-cert/--admin-tls-key: the JWKS travels in plain HTTP")
	}
	names, ok := certsOut[filepath.Dir(certFile)]
	if !ok {
		t.Fatalf("--admin-tls-cert %s is not a certificate the quickstart issues with certs server", certFile)
	}

	const heredoc = "cat > mesh.yaml <<'EOF'\n"
	_, body, ok := strings.Cut(section, heredoc)
	if body, _, ok = strings.Cut(body, "\nEOF\n"); !ok {
		t.Fatal("the quickstart writes no mesh.yaml")
	}
	file := filepath.Join(t.TempDir(), "mesh.yaml")
	writeTestFile(t, file, body+"\n")
	mesh := loadMesh(t, file)
	san := adminSAN(t, mesh.Spec)
	if !contains(names, san) {
		t.Errorf("mesh.yaml makes the sidecars check %s, which the admin certificate (%v) does not carry", san, names)
	}
	if _, p, _ := net.SplitHostPort(mesh.Spec.ControlPlaneAdmin); p != adminPort {
		t.Errorf("mesh.yaml controlPlaneAdmin %s, serve --admin-listen %s", mesh.Spec.ControlPlaneAdmin, listen)
	}
	caFile := mesh.Spec.ControlPlaneAdminTLS.CAFile
	if ca := flagValue(sidecar, "xds-tls-ca"); ca != caFile {
		t.Errorf("the sidecar's bootstrap trusts %s, mesh.yaml's controlPlaneAdminTLS.caFile is %s: the sidecar host has one of them", ca, caFile)
	}
	cat := tenants.NewCatalog(tenants.Input{Revision: 1, Mesh: mesh, Tenants: composeTenants(t)}, nil)
	checkJWKSCluster(t, "quickstart sidecar", jwksTLSOf(t, cat, executiveSidecar), caFile, san)
}
