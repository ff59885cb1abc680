package authz

import (
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// One tenant's change rebuilds that tenant's entry only; the others are
// the very same entries (compiled schemas, issuers), and a removed tenant
// is gone from the index.
func TestIndexRebuildsOnlyWhatChanged(t *testing.T) {
	w := newWorld(t)
	s, _ := newServer(t, w, Options{})
	before := s.idx.Load()

	prev := w.cat
	w.edit("tenant-b", func(sp *tenants.TenantSpec) { sp.Errors = &tenants.ErrorsSpec{Locale: "en"} })
	if _, ok := w.build().ChangedSince(prev); !ok {
		t.Fatal("the catalog was not built incrementally; this test would not exercise the incremental index")
	}
	s.Update(w.cat)
	after := s.idx.Load()
	if after.tenants["tenant-a"] != before.tenants["tenant-a"] || after.tenants["tenant-s"] != before.tenants["tenant-s"] {
		t.Error("unchanged tenants' entries were rebuilt")
	}
	if b := after.tenants["tenant-b"]; b == before.tenants["tenant-b"] || b.locale != "en" || b.t != mustTenant(t, w.cat, "tenant-b") {
		t.Errorf("tenant-b's entry is not rebuilt from its new definition (locale %q)", b.locale)
	}

	delete(w.tenants, "tenant-s")
	w.build()
	s.Update(w.cat)
	gone := s.idx.Load()
	if _, ok := gone.tenants["tenant-s"]; ok {
		t.Error("a deleted tenant is still in the index")
	}
	if len(gone.tenants) != w.cat.Len() || gone.tenants["tenant-a"] != before.tenants["tenant-a"] {
		t.Errorf("index holds %d tenants for a catalog of %d, or rebuilt tenant-a", len(gone.tenants), w.cat.Len())
	}
}

func mustTenant(t *testing.T, cat *tenants.Catalog, id string) *tenants.Tenant {
	t.Helper()
	tn, ok := cat.Tenant(id)
	if !ok {
		t.Fatalf("%s not in the catalog", id)
	}
	return tn
}
