package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tenantmesh/tenantmesh/authz"
	"github.com/tenantmesh/tenantmesh/tenants"
)

const devIssuerURL = "https://dev-issuer.local"

// demoTenant is a tenant with one route that any authenticated caller of
// the tenant may use.
func demoTenant(id string) string {
	return `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: ` + id + `}
spec:
  hosts: [` + id + `.api.example.com]
  routes:
    - {name: orders, match: {pathPrefix: /api/orders/}, upstream: svc, roles: [user]}
  upstreams:
    - {name: svc, endpoints: [{address: ` + id + `-svc, port: 8080}]}
`
}

// devIssuerMesh runs `token dev-issuer` and returns its MeshConfig.
func devIssuerMesh(t *testing.T, keyFile string) *tenants.MeshConfig {
	t.Helper()
	r := runArgs("", "token", "dev-issuer", "--out", keyFile, "--issuer", devIssuerURL)
	if r.code != 0 {
		t.Fatalf("dev-issuer: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "DEV ONLY") {
		t.Errorf("dev-issuer does not warn on stderr that it is for development only: %q", r.stderr)
	}
	docs, err := tenants.Decode("dev-issuer", []byte(r.stdout))
	if err != nil {
		t.Fatalf("dev-issuer output does not decode: %v\n%s", err, r.stdout)
	}
	mesh, ok := docs[0].Object.(*tenants.MeshConfig)
	if !ok || len(docs) != 1 {
		t.Fatalf("dev-issuer printed %d documents, first %T; want one MeshConfig", len(docs), docs[0].Object)
	}
	if errs := tenants.Validate(mesh, nil); len(errs) > 0 {
		t.Fatalf("dev-issuer MeshConfig does not validate: %v", errs)
	}
	return mesh
}

func issueToken(t *testing.T, keyFile, tenant string, roles string) string {
	t.Helper()
	r := runArgs("", "token", "issue", "--issuer-key", keyFile, "--issuer", devIssuerURL, "--tenant", tenant, "--roles", roles)
	if r.code != 0 {
		t.Fatalf("token issue: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "DEV ONLY") {
		t.Errorf("token issue does not warn on stderr: %q", r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// authzWith is the real ext_authz server over a catalog of tenant-a,
// tenant-b and mesh.
func authzWith(t *testing.T, mesh *tenants.MeshConfig) *authz.Server {
	t.Helper()
	docs, err := tenants.Decode("tenants", []byte(demoTenant("tenant-a")+"---\n"+demoTenant("tenant-b")))
	if err != nil {
		t.Fatal(err)
	}
	in := tenants.Input{Revision: 1, Mesh: mesh}
	for _, d := range docs {
		in.Tenants = append(in.Tenants, d.Object.(*tenants.Tenant))
	}
	srv, err := authz.New(authz.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.Update(tenants.NewCatalog(in, nil))
	return srv
}

func check(t *testing.T, srv *authz.Server, routeTenant, token string) *authv3.CheckResponse {
	t.Helper()
	resp, err := srv.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: routeTenant + ".api.example.com", Path: "/api/orders/1",
			Headers: map[string]string{"authorization": "Bearer " + token},
		}},
		ContextExtensions: map[string]string{authz.ExtTenantID: routeTenant, authz.ExtRoute: "orders"},
	}})
	if err != nil {
		t.Fatalf("Check returned an error (denials must be responses): %v", err)
	}
	return resp
}

func TestDevIssuerTokensAreCheckedByAuthz(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "issuer.pem")
	mesh := devIssuerMesh(t, key)
	srv := authzWith(t, mesh)
	token := issueToken(t, key, "tenant-a", "user")

	ok := check(t, srv, "tenant-a", token)
	if codes.Code(ok.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("tenant-a token on tenant-a's route denied: %v", ok.GetDeniedResponse())
	}
	found := false
	for _, h := range ok.GetOkResponse().GetHeaders() {
		found = found || (h.GetHeader().GetKey() == authz.HeaderTenantID && h.GetHeader().GetValue() == "tenant-a")
	}
	if !found {
		t.Errorf("allowed without x-tenant-id: tenant-a: %v", ok.GetOkResponse())
	}

	cross := check(t, srv, "tenant-b", token)
	if got := cross.GetDeniedResponse().GetStatus().GetCode(); got != 403 || !strings.Contains(cross.GetDeniedResponse().GetBody(), `"cross_tenant"`) {
		t.Errorf("tenant-a token on tenant-b's route: status %d body %s; want 403 cross_tenant", got, cross.GetDeniedResponse().GetBody())
	}

	noRole := issueToken(t, key, "tenant-a", "viewer")
	if got := check(t, srv, "tenant-a", noRole).GetDeniedResponse().GetStatus().GetCode(); got != 403 {
		t.Errorf("token without the route's role: status %d, want 403 (roles claim must be read)", got)
	}

	// A token of another key claiming the same issuer is rejected: the
	// MeshConfig pins this key, not just the issuer name.
	other := filepath.Join(dir, "other.pem")
	devIssuerMesh(t, other)
	forged := issueToken(t, other, "tenant-a", "user")
	if got := check(t, srv, "tenant-a", forged).GetDeniedResponse().GetStatus().GetCode(); got != 401 {
		t.Errorf("token of a foreign key: status %d, want 401", got)
	}
}

func TestDevIssuerKeepsItsKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "issuer.pem")
	first := devIssuerMesh(t, key)
	again := devIssuerMesh(t, key)
	if first.Spec.JWT[0].JWKS != again.Spec.JWT[0].JWKS {
		t.Error("a second dev-issuer run replaced the key: tokens issued before would stop working")
	}
}

func TestDevIssuerMergesIntoBase(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "mesh.yaml")
	writeTestFile(t, base, `apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
  authz: {address: "tenantmesh:9191"}
`)
	r := runArgs("", "token", "dev-issuer", "--out", filepath.Join(dir, "k.pem"), "--issuer", devIssuerURL, "--base", base, "--alg", "RS256")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "address: tenantmesh:9191") || !strings.Contains(r.stdout, "RS256") {
		t.Errorf("--base settings or --alg RS256 lost:\n%s", r.stdout)
	}
}

func TestTokenUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"token", "issue", "--tenant", "a"},
		{"token", "dev-issuer", "--issuer", devIssuerURL},
		{"token", "dev-issuer", "--out", filepath.Join(t.TempDir(), "k"), "--issuer", devIssuerURL, "--alg", "HS256"},
	} {
		if r := runArgs("", args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, exitUsage, r.stderr)
		}
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
