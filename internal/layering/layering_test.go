// Package layering holds the test that keeps tenantmesh's package graph
// layered: the table below is the source of truth for which tenantmesh
// package may import which, and which may link etcd.
package layering

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tenantmesh/tenantmesh"

// layer is what one package may depend on.
type layer struct {
	// imports are the tenantmesh packages (relative to the module) its
	// non-test files may import.
	imports []string
	// any lifts the import rule: the composition roots (controlplane,
	// the CLI) and the end-to-end tests wire everything together.
	any bool
	// etcd allows go.etcd.io packages among its dependencies, direct or
	// not. Everything below the store must run, and be tested, without
	// linking an etcd client.
	etcd bool
	// testImports are what its tests may import on top of imports.
	testImports []string
}

// layers is the allowed-import table, bottom up. A package missing from
// it fails the test, so a new package gets a place here first.
var layers = map[string]layer{
	// The names every part agrees on: no tenantmesh imports at all.
	"contract": {},

	// Envoy resource builders and the gate that checks what is sent.
	"envoy":          {imports: []string{"contract"}},
	"envoy/validate": {imports: []string{"contract"}},
	// Bootstraps: what a node says about itself, validated with the gate
	// (validate.Deep). Its tests read the bootstrap back with
	// translate.NodeFromProto, the real reader, and run grpc-go over
	// mutual TLS with dev-CA certificates.
	"envoy/bootstrap": {imports: []string{"envoy", "envoy/validate", "contract"},
		testImports: []string{"xds/translate", "internal/devca", "internal/identity"}},

	// Who may talk to the control plane: the SPIFFE scheme and the
	// verified peer of a stream (a leaf the xDS server may import), the
	// TLS server files reloaded from disk, and the dev CA of `tenantmesh
	// certs`. None links etcd.
	"internal/identity":  {testImports: []string{"internal/devca"}},
	"internal/tlsconfig": {testImports: []string{"internal/devca", "internal/identity"}},
	"internal/devca":     {imports: []string{"internal/identity"}},

	// The tenant API and its storage.
	"tenants":       {imports: []string{"contract"}},
	"tenants/store": {imports: []string{"tenants", "contract", "internal/keyfile"}, etcd: true, testImports: []string{"internal/etcdtest"}},

	// Translation and the xDS server. The server never reads the store:
	// it gets Catalogs and writes tenants.Status through an interface.
	"xds/translate": {imports: []string{"tenants", "envoy", "envoy/validate", "contract"}},
	"xds/adsclient": {},
	"xds":           {imports: []string{"xds/translate", "tenants", "envoy/validate", "contract", "internal/identity"}, testImports: []string{"xds/adsclient", "internal/devca", "internal/grpctest"}},

	// The ext_authz service.
	"authz/jwks": {},
	"authz":      {imports: []string{"authz/jwks", "tenants", "contract", "internal/keyfile"}, testImports: []string{"envoy", "internal/grpctest"}},

	// Kubernetes manifests. Its tests read sidecar bootstraps back with
	// translate.NodeFromProto.
	"k8s": {imports: []string{"envoy/bootstrap", "tenants", "contract"}, testImports: []string{"xds/translate"}},

	// Composition roots and end-to-end tests.
	"controlplane":   {any: true, etcd: true},
	"cmd/tenantmesh": {any: true, etcd: true},
	"integration":    {any: true, etcd: true},

	// Test helpers.
	"internal/etcdtest":      {etcd: true},
	"internal/ratelimittest": {},
	"internal/layering":      {},
	// Explains why an etcd client cannot connect (TCP, TLS handshake,
	// client certificate): used by the CLI and serve, no etcd client.
	"internal/etcddiag": {testImports: []string{"internal/testcerts"}},
	// Ed25519 key files (context token and audit signing keys).
	"internal/keyfile": {},
	// Loopback gRPC servers and clients for tests.
	"internal/grpctest": {},
	// Throw-away certificates for tests.
	"internal/testcerts": {},
}

// pkg is one package as go list reports it.
type pkg struct {
	path                           string // relative to the module
	imports, testImports, etcdDeps []string
}

// listPackages runs go list over the module (from the module root, two
// levels up) and keeps what the rules look at.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the packages: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-f",
		`{{.ImportPath}}|{{join .Imports ","}}|{{join .TestImports ","}},{{join .XTestImports ","}}|{{join .Deps ","}}`, "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 4 {
			t.Fatalf("go list line %q: want 4 fields", line)
		}
		p := pkg{path: strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")}
		p.imports = local(f[1])
		p.testImports = local(f[2])
		for d := range strings.SplitSeq(f[3], ",") {
			if strings.HasPrefix(d, "go.etcd.io/") {
				p.etcdDeps = append(p.etcdDeps, d)
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// local returns the tenantmesh packages of a comma-separated import list,
// relative to the module.
func local(list string) []string {
	var out []string
	for imp := range strings.SplitSeq(list, ",") {
		if rel, ok := strings.CutPrefix(imp, module+"/"); ok && !slices.Contains(out, rel) {
			out = append(out, rel)
		}
	}
	return out
}

// violations checks pkgs against table and describes every broken rule.
func violations(pkgs []pkg, table map[string]layer) []string {
	var bad []string
	for _, p := range pkgs {
		l, ok := table[p.path]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s has no layer: add it to the table in internal/layering", p.path))
			continue
		}
		if !l.etcd && len(p.etcdDeps) > 0 {
			bad = append(bad, fmt.Sprintf("%s links etcd (%s); only the store and the composition roots may", p.path, strings.Join(p.etcdDeps, ", ")))
		}
		if l.any {
			continue
		}
		for _, imp := range p.imports {
			if !slices.Contains(l.imports, imp) {
				bad = append(bad, fmt.Sprintf("%s imports %s; it may import only %v", p.path, imp, l.imports))
			}
		}
		for _, imp := range p.testImports {
			if imp != p.path && !slices.Contains(l.imports, imp) && !slices.Contains(l.testImports, imp) {
				bad = append(bad, fmt.Sprintf("the tests of %s import %s; they may import only %v", p.path, imp, slices.Concat(l.imports, l.testImports)))
			}
		}
	}
	return bad
}

func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	for _, v := range violations(pkgs, layers) {
		t.Error(v)
	}
	// A row for a package that is gone would let its name be reused
	// under rules nobody looked at again.
	for path := range layers {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.path == path }) {
			t.Errorf("the table has a layer for %s, which is no package of the module", path)
		}
	}
}

// The rules themselves: a forbidden import, a forbidden test import, an
// etcd dependency below the store and an unplaced package are each caught.
func TestViolations(t *testing.T) {
	table := map[string]layer{
		"contract":      {},
		"tenants":       {imports: []string{"contract"}},
		"tenants/store": {imports: []string{"tenants"}, etcd: true},
		"xds":           {imports: []string{"tenants"}, testImports: []string{"contract"}},
	}
	ok := []pkg{
		{path: "contract"},
		{path: "tenants", imports: []string{"contract"}, testImports: []string{"tenants"}},
		{path: "tenants/store", imports: []string{"tenants"}, etcdDeps: []string{"go.etcd.io/etcd/client/v3"}},
		{path: "xds", imports: []string{"tenants"}, testImports: []string{"contract"}},
	}
	if v := violations(ok, table); len(v) != 0 {
		t.Fatalf("a graph within the table: %v", v)
	}
	for name, p := range map[string]pkg{
		"import":      {path: "xds", imports: []string{"tenants/store"}},
		"test import": {path: "tenants", testImports: []string{"tenants/store"}},
		"etcd":        {path: "xds", etcdDeps: []string{"go.etcd.io/etcd/api/v3/mvccpb"}},
		"no layer":    {path: "newpkg"},
	} {
		if v := violations([]pkg{p}, table); len(v) != 1 {
			t.Errorf("%s: violations = %v, want one", name, v)
		}
	}
}
