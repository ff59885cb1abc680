package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// check sends Envoy's CheckRequest for a tenant route to serve's ext_authz.
func check(t *testing.T, c authv3.AuthorizationClient, routeTenant string, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: routeTenant + ".example.com", Path: "/api/orders", Headers: headers,
		}},
		ContextExtensions: map[string]string{"tenant_id": routeTenant, "route": "api"},
	}})
	if err != nil {
		t.Fatalf("Check returned a gRPC error (must always be a CheckResponse): %v", err)
	}
	return resp
}

func header(r *authv3.CheckResponse, name string) (string, bool) {
	for _, h := range r.GetOkResponse().GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue(), h.GetAppendAction() == corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		}
	}
	return "", false
}

// TestServeAuthorizesFromEtcd: the ext_authz server inside `serve` follows
// etcd — an API key created in the store authenticates its tenant's routes
// only, and stops working once revoked.
func TestServeAuthorizesFromEtcd(t *testing.T) {
	p := startPlane(t, configWithoutPreload())
	p.apply(t, tenantYAML("tenant-a", 9001, ""), tenantYAML("tenant-b", 9002, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, rec, err := p.store.CreateAPIKey(ctx, "tenant-a", "ci", 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.cfg.AuthzListen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	c := authv3.NewAuthorizationClient(conn)

	var allowed *authv3.CheckResponse
	waitFor(t, "the key to authenticate tenant-a", func() bool {
		allowed = check(t, c, "tenant-a", map[string]string{"x-api-key": key, "x-tenant-id": "tenant-a"})
		return allowed.GetStatus().GetCode() == int32(code.Code_OK)
	})
	if v, overwrite := header(allowed, "x-tenant-id"); v != "tenant-a" || !overwrite {
		t.Errorf("x-tenant-id = %q (overwrite %v), want tenant-a set with overwrite", v, overwrite)
	}
	if _, ok := header(allowed, "x-tenant-context"); !ok {
		t.Error("no x-tenant-context on allow")
	}

	// The same key on tenant-b's route is a cross-tenant request.
	if got := check(t, c, "tenant-b", map[string]string{"x-api-key": key}); got.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Errorf("tenant-a key on tenant-b route: %v, want HTTP 403", got.GetDeniedResponse().GetStatus())
	}
	// A spoofed x-tenant-id that disagrees with the credential.
	if got := check(t, c, "tenant-a", map[string]string{"x-api-key": key, "x-tenant-id": "tenant-b"}); got.GetStatus().GetCode() == int32(code.Code_OK) {
		t.Error("x-tenant-id tenant-b with a tenant-a key was allowed")
	}

	if err := p.store.RevokeAPIKey(ctx, "tenant-a", rec.ID, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revoked key to be refused", func() bool {
		r := check(t, c, "tenant-a", map[string]string{"x-api-key": key})
		return r.GetDeniedResponse().GetStatus().GetCode() == 401
	})
}
