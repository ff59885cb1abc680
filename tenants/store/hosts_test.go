package store

import (
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

func TestHostsBelongToOneTenant(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))

	// tenant-b may not take tenant-a's host...
	squat := strings.Replace(tenantYAML("tenant-b", "B"), "hosts: [tenant-b.api.example.com]", "hosts: [tenant-b.api.example.com, tenant-a.api.example.com]", 1)
	_, err := s.Apply(ctx, decode(t, "squat.yaml", squat), ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), `squat.yaml (document 1): Tenant "tenant-b": spec.hosts[1]: host "tenant-a.api.example.com" already belongs to tenant "tenant-a"`) {
		t.Fatalf("apply of a taken host: %v", err)
	}
	if n := keyCount(t, cli, "tenants/"); n != 1 {
		t.Fatalf("%d tenants stored after a refused apply", n)
	}
	// ...and an unrelated update of tenant-a keeps it.
	mustApply(t, s, tenantYAML("tenant-a", "A2"))
	if _, err := s.Apply(ctx, decode(t, "squat.yaml", squat), ApplyOptions{}); err == nil {
		t.Fatal("host taken after its owner's update")
	}

	// A host its owner drops is free again.
	moved := strings.Replace(tenantYAML("tenant-a", "A3"), "hosts: [tenant-a.api.example.com]", "hosts: [a.example.com]", 1)
	mustApply(t, s, moved)
	mustApply(t, s, squat)
	// Deleting a tenant frees its hosts.
	if _, err := s.Apply(ctx, decode(t, "c.yaml", strings.Replace(tenantYAML("tenant-c", "C"), "tenant-c.api.example.com", "a.example.com", 1)), ApplyOptions{}); err == nil {
		t.Fatal("tenant-c took tenant-a's new host")
	}
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-a", "tester"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, strings.Replace(tenantYAML("tenant-c", "C"), "tenant-c.api.example.com", "a.example.com", 1))
	if n := keyCount(t, cli, "hosts/"); n != 3 {
		t.Fatalf("%d host claims, want 3 (tenant-b: 2, tenant-c: 1)", n)
	}
}
