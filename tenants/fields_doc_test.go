package tenants_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// The test lives here, next to the types, so that adding a field to
// types.go or shared.go fails `go test ./tenants/` until docs/fields.md
// has its row. It reads the other packages' sources (it imports none of
// them) only to check that the functions the rows name exist.

// fieldsDoc is the document under test, relative to this package.
const fieldsDoc = "../docs/fields.md"

// everyKind is the section whose rows apply to every kind.
const everyKind = "Every kind"

// manifestKinds are the document kinds and their Go types.
var manifestKinds = map[string]reflect.Type{
	string(tenants.KindTenant):        reflect.TypeFor[tenants.Tenant](),
	string(tenants.KindTier):          reflect.TypeFor[tenants.Tier](),
	string(tenants.KindMeshConfig):    reflect.TypeFor[tenants.MeshConfig](),
	string(tenants.KindSharedService): reflect.TypeFor[tenants.SharedService](),
}

// docPackages maps the package names a row may cite to their directories.
var docPackages = map[string]string{
	"tenants":      "tenants",
	"store":        "tenants/store",
	"translate":    "xds/translate",
	"xds":          "xds",
	"envoy":        "envoy",
	"validate":     "envoy/validate",
	"bootstrap":    "envoy/bootstrap",
	"authz":        "authz",
	"jwks":         "authz/jwks",
	"k8s":          "k8s",
	"controlplane": "controlplane",
}

func TestFieldsDocumented(t *testing.T) {
	doc := readFieldsDoc(t)
	funcs := map[string]map[string]bool{} // package dir → declared names
	for kind, typ := range manifestKinds {
		want := manifestFields(typ)
		documented := map[string]bool{}
		for p := range doc.rows[kind] {
			documented[p] = true
		}
		for p := range doc.rows[everyKind] {
			documented[p] = true
		}
		for _, p := range want {
			if !documented[p] {
				t.Errorf("%s: %s: field %s has no row in section %q (or %q)", fieldsDoc, kind, p, kind, everyKind)
			}
		}
		exists := map[string]bool{}
		for _, p := range want {
			exists[p] = true
		}
		for _, sec := range []string{kind, everyKind} {
			for p, r := range doc.rows[sec] {
				if !exists[p] {
					t.Errorf("%s:%d: %s has no field %s (renamed or removed?)", fieldsDoc, r.line, kind, p)
				}
			}
		}
	}
	for sec, rows := range doc.rows {
		for p, r := range rows {
			if len(r.funcs) == 0 {
				t.Errorf("%s:%d: %s %s: the second column must name the function that reads the field, as `pkg.Func` or `pkg.Type.Method`", fieldsDoc, r.line, sec, p)
			}
			for _, f := range r.funcs {
				if err := declared(funcs, f); err != nil {
					t.Errorf("%s:%d: %s %s: %v", fieldsDoc, r.line, sec, p, err)
				}
			}
			if r.becomes == "" {
				t.Errorf("%s:%d: %s %s: the third column (what the field becomes) is empty", fieldsDoc, r.line, sec, p)
			}
		}
	}
}

// TestManifestFieldsWalk pins the walk itself: nested structs, pointers,
// slices, embedded TypeMeta, json:"-" and leaf types.
func TestManifestFieldsWalk(t *testing.T) {
	got := strings.Join(manifestFields(reflect.TypeFor[tenants.Tenant]()), " ")
	for _, p := range []string{
		"apiVersion", "kind", "metadata.name", "metadata.labels",
		"spec.routes[].match.pathPrefix", "spec.routes[].retries.on",
		"spec.routes[].requestValidation.bodySchema", "spec.rateLimits.global[].per",
		"spec.upstreams[].healthCheck.grpc.service", "spec.isolation.limitRange.max",
	} {
		if !strings.Contains(" "+got+" ", " "+p+" ") {
			t.Errorf("walk misses %s", p)
		}
	}
	for _, p := range []string{"spec.priority", "spec.Priority", "TypeMeta", "spec.routes", "spec.rateLimits"} {
		if strings.Contains(" "+got+" ", " "+p+" ") {
			t.Errorf("walk lists %s, which is not a manifest leaf field", p)
		}
	}
}

// manifestFields lists the JSON paths of every leaf field of typ, sorted:
// "spec.routes[].timeout", "spec.hosts". Fields holding objects are not
// listed themselves, only their leaves; a map of objects is walked as
// "path.*".
func manifestFields(typ reflect.Type) []string {
	var out []string
	walkFields(typ, "", &out)
	sort.Strings(out)
	return out
}

var timeType = reflect.TypeFor[time.Time]()

func walkFields(typ reflect.Type, prefix string, out *[]string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		if name == "" && f.Anonymous && ft.Kind() == reflect.Struct {
			walkFields(ft, prefix, out) // encoding/json promotes its fields
			continue
		}
		if name == "" {
			name = f.Name
		}
		walkValue(ft, prefix+name, out)
	}
}

func walkValue(ft reflect.Type, path string, out *[]string) {
	for {
		switch ft.Kind() {
		case reflect.Pointer:
			ft = ft.Elem()
			continue
		case reflect.Slice, reflect.Array:
			// A list of objects is walked as "path[]"; a list of scalars
			// (and json.RawMessage) is a leaf.
			if elem := ft.Elem(); elem.Kind() == reflect.Struct || elem.Kind() == reflect.Pointer {
				ft, path = elem, path+"[]"
				continue
			}
		case reflect.Map:
			if elem := ft.Elem(); elem.Kind() == reflect.Struct || elem.Kind() == reflect.Pointer {
				ft, path = elem, path+".*"
				continue
			}
		case reflect.Struct:
			if ft != timeType {
				walkFields(ft, path+".", out)
				return
			}
		}
		*out = append(*out, path)
		return
	}
}

// docRow is one table row of docs/fields.md.
type docRow struct {
	line    int
	funcs   []string
	becomes string
}

type fieldsDocument struct {
	rows map[string]map[string]docRow // section → field path → row
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readFieldsDoc parses the tables of the sections named after a kind (and
// everyKind): the first column is the field path, the second the
// functions that read it, the third what it becomes.
func readFieldsDoc(t *testing.T) *fieldsDocument {
	t.Helper()
	f, err := os.Open(fieldsDoc)
	if err != nil {
		t.Fatalf("open %s: %v", fieldsDoc, err)
	}
	defer f.Close()
	doc := &fieldsDocument{rows: map[string]map[string]docRow{}}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = ""
			if _, isKind := manifestKinds[h]; isKind || h == everyKind {
				section = h
				doc.rows[section] = map[string]docRow{}
			}
			continue
		}
		if section == "" || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := splitRow(line)
		if len(cells) < 3 || strings.Trim(cells[0], "- :") == "" || cells[0] == "field" {
			continue // separator or header
		}
		m := backticked.FindStringSubmatch(cells[0])
		if m == nil {
			t.Errorf("%s:%d: the first column must be a field path in backticks, got %q", fieldsDoc, n, cells[0])
			continue
		}
		path := m[1]
		if prev, dup := doc.rows[section][path]; dup {
			t.Errorf("%s:%d: %s %s is documented twice (first at line %d)", fieldsDoc, n, section, path, prev.line)
		}
		r := docRow{line: n, becomes: cells[2]}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			r.funcs = append(r.funcs, m[1])
		}
		doc.rows[section][path] = r
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", fieldsDoc, err)
	}
	for kind := range manifestKinds {
		if doc.rows[kind] == nil {
			t.Errorf("%s: no section %q", fieldsDoc, "## "+kind)
		}
	}
	return doc
}

// splitRow splits a markdown table row into trimmed cells; `\|` is a
// literal bar inside a cell.
func splitRow(line string) []string {
	line = strings.ReplaceAll(line, `\|`, "\x00")
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(p, "\x00", "|"))
	}
	return parts
}

// declared reports whether ref ("pkg.Func" or "pkg.Type.Method") names a
// function or method declared in the non-test files of that package.
func declared(cache map[string]map[string]bool, ref string) error {
	pkg, name, ok := strings.Cut(ref, ".")
	if !ok {
		return fmt.Errorf("%q: want pkg.Func or pkg.Type.Method", ref)
	}
	dir, ok := docPackages[pkg]
	if !ok {
		return fmt.Errorf("%q: unknown package %q (known: see docPackages in tenants/fields_doc_test.go)", ref, pkg)
	}
	names, ok := cache[dir]
	if !ok {
		var err error
		if names, err = declaredFuncs(filepath.Join("..", dir)); err != nil {
			return err
		}
		cache[dir] = names
	}
	if !names[name] {
		return fmt.Errorf("%q: no function or method %s in %s", ref, name, dir)
	}
	return nil
}

// declaredFuncs are the functions ("F") and methods ("T.M") of a package.
func declaredFuncs(dir string) (map[string]bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if fd.Recv == nil || len(fd.Recv.List) == 0 {
				out[fd.Name.Name] = true
				continue
			}
			out[recvName(fd.Recv.List[0].Type)+"."+fd.Name.Name] = true
		}
	}
	return out, nil
}

// recvName is the type name of a receiver: T, *T, T[P], *T[P].
func recvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
