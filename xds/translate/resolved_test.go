package translate

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// TestTranslateNeedsAdmittedObjects: translation reads what the Catalog
// resolved and defaults nothing itself, so a tenant or MeshConfig that
// did not come out of a Catalog (here: copies of ones that did) is
// refused, never translated with defaults of its own.
func TestTranslateNeedsAdmittedObjects(t *testing.T) {
	cat := load(t, "full")
	tt, _ := cat.Tenant("tenant-a")
	if _, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), tt, RoleEdge); err != nil {
		t.Fatal(err)
	}
	cp := *tt
	for _, role := range []Role{RoleEdge, RoleGRPC} {
		if _, err := TranslateTenant(cat.Mesh(), cat.SharedServices(), &cp, role); !errors.Is(err, errNotAdmitted) {
			t.Errorf("%s: a tenant copy was translated: %v", role, err)
		}
	}
	mesh := *cat.Mesh()
	if _, err := TranslateTenant(&mesh, cat.SharedServices(), tt, RoleEdge); !errors.Is(err, errNotAdmitted) {
		t.Errorf("a MeshConfig copy was translated: %v", err)
	}
}

// TestSameSharedRoutesNeedsAdmitted: a shared service with no resolved
// timeout cannot be shown unchanged, so it counts as changed.
func TestSameSharedRoutesNeedsAdmitted(t *testing.T) {
	cat := load(t, "shared-edge")
	base := cat.SharedServices()
	a, b := *base[0], *base[0]
	if SameSharedRoutes([]*tenants.SharedService{&a}, []*tenants.SharedService{&b}) {
		t.Error("two unadmitted shared services compared equal")
	}
	again := append([]*tenants.SharedService{tenants.DefaultedSharedService(base[0])}, base[1:]...)
	if !SameSharedRoutes(base, again) {
		t.Error("a re-admitted, unchanged shared service compared different")
	}
}

// TestTranslateAppliesNoDefaults pins the split between the packages:
// defaults and duration parsing belong to admission (tenants/defaults.go,
// tenants/resolved.go); this package reads the result.
func TestTranslateAppliesNoDefaults(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, _ := sel.X.(*ast.Ident)
			switch {
			case x != nil && x.Name == "tenants" && strings.HasPrefix(sel.Sel.Name, "Default"):
				t.Errorf("%s: %s.%s: defaults are applied when the Catalog admits an object", fset.Position(sel.Pos()), x.Name, sel.Sel.Name)
			case sel.Sel.Name == "Parse" || sel.Sel.Name == "ParseDuration":
				t.Errorf("%s: %s: durations are resolved when the Catalog admits an object", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
