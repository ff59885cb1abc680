package store

import (
	"bytes"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// acceptedOf is tenant id as the Catalog admits it from the store: the
// defaulted version the xDS server translates and records as accepted.
func acceptedOf(t *testing.T, s *Store, id string) *tenants.Tenant {
	t.Helper()
	o, err := s.Get(ctxT(t), tenants.KindTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	cat := tenants.NewCatalog(tenants.Input{Tenants: []*tenants.Tenant{o.(*tenants.Tenant)}}, nil)
	v, ok := cat.Tenant(id)
	if !ok {
		t.Fatalf("catalog rejected %s: %v", id, cat.Rejected())
	}
	return v
}

func TestAcceptedVersionRoundTrip(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A")+"---\n"+tenantYAML("tenant-b", "B"))
	a := acceptedOf(t, s, "tenant-a")
	wrote, err := s.WriteAccepted(ctx, a)
	if err != nil || !wrote {
		t.Fatalf("WriteAccepted: wrote %v, %v", wrote, err)
	}
	got, err := s.ListAccepted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["tenant-a"] == nil {
		t.Fatalf("ListAccepted = %v, want tenant-a only", got)
	}
	if rv := got["tenant-a"].Metadata.ResourceVersion; rv != a.Metadata.ResourceVersion {
		t.Errorf("stored accepted version has resourceVersion %s, want %s", rv, a.Metadata.ResourceVersion)
	}
	want, err := canonical(a)
	if err != nil {
		t.Fatal(err)
	}
	back, err := canonical(got["tenant-a"])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, want) {
		t.Errorf("stored accepted version differs:\n got %s\nwant %s", back, want)
	}
	// A later version replaces it.
	mustApply(t, s, tenantYAML("tenant-a", "A2"))
	a2 := acceptedOf(t, s, "tenant-a")
	if wrote, err := s.WriteAccepted(ctx, a2); err != nil || !wrote {
		t.Fatalf("WriteAccepted of the new version: wrote %v, %v", wrote, err)
	}
	got, err = s.ListAccepted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["tenant-a"].Spec.DisplayName != "A2" || got["tenant-a"].Metadata.ResourceVersion != a2.Metadata.ResourceVersion {
		t.Errorf("accepted version after the update: %+v", got["tenant-a"].Metadata)
	}
}

// An accepted version is the tenant's: deleting the tenant deletes it, and
// a write that arrives after the delete, or after the tenant was created
// again under the same name, writes nothing.
func TestAcceptedVersionDoesNotOutliveItsTenant(t *testing.T) {
	s, cli := newTestStore(t)
	ctx := ctxT(t)
	mustApply(t, s, tenantYAML("tenant-a", "A"))
	a := acceptedOf(t, s, "tenant-a")
	if wrote, err := s.WriteAccepted(ctx, a); err != nil || !wrote {
		t.Fatalf("WriteAccepted: wrote %v, %v", wrote, err)
	}
	if err := s.Delete(ctx, tenants.KindTenant, "tenant-a", "tester"); err != nil {
		t.Fatal(err)
	}
	if n := keyCount(t, cli, "accepted/"); n != 0 {
		t.Errorf("%d accepted versions remain after the tenant was deleted", n)
	}
	if wrote, err := s.WriteAccepted(ctx, a); err != nil || wrote {
		t.Errorf("WriteAccepted after the delete: wrote %v, %v; want nothing written", wrote, err)
	}
	mustApply(t, s, tenantYAML("tenant-a", "again"))
	if wrote, err := s.WriteAccepted(ctx, a); err != nil || wrote {
		t.Errorf("WriteAccepted of the deleted tenant's version into its successor: wrote %v, %v", wrote, err)
	}
	if n := keyCount(t, cli, "accepted/"); n != 0 {
		t.Errorf("%d accepted versions written for a tenant that is gone", n)
	}
}
