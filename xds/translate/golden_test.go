package translate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/tenants"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the current translation")

// caseHeader is read from the leading comment lines of an input:
//
//	# role: grpc                    node role (default edge)
//	# error: <substring>            expected tenant error (invalid-* inputs)
//	# tenant: / service: / appPort:  the sidecar node's metadata (role sidecar)
type caseHeader struct {
	role    Role
	errWant string
	node    Node
}

func readHeader(data []byte) caseHeader {
	h := caseHeader{role: RoleEdge}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "#") {
			break
		}
		k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "#")), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "role":
			h.role = Role(strings.TrimSpace(v))
		case "error":
			h.errWant = strings.TrimSpace(v)
		case "tenant":
			h.node.Tenant = strings.TrimSpace(v)
		case "service":
			h.node.Service = strings.TrimSpace(v)
		case "appPort":
			h.node.AppPort, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return h
}

// catalogFrom decodes a multi-document manifest into a Catalog.
func catalogFrom(t testing.TB, file string, data []byte) *tenants.Catalog {
	t.Helper()
	docs, err := tenants.Decode(file, data)
	if err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	in := tenants.Input{Revision: 1}
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *tenants.MeshConfig:
			in.Mesh = o
		case *tenants.Tier:
			in.Tiers = append(in.Tiers, o)
		case *tenants.Tenant:
			in.Tenants = append(in.Tenants, o)
		case *tenants.SharedService:
			in.SharedServices = append(in.SharedServices, o)
		}
	}
	cat := tenants.NewCatalog(in, nil)
	if len(cat.Rejected()) > 0 {
		t.Fatalf("catalog rejected tenants: %v", cat.Rejected())
	}
	return cat
}

// TestGolden translates every testdata/in/*.yaml and compares the result,
// kind by kind, with testdata/out/<name>.<kind>.yaml. Run with -update to
// rewrite the outputs (stale ones are deleted). Inputs named invalid-*
// must produce a tenant error containing their "# error:" text, and every
// other tenant of the input must still be translated.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	written := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			h := readHeader(data)
			cat := catalogFrom(t, in, data)
			node := h.node
			node.ID, node.Role = "golden", h.role
			res, terrs, err := Translate(cat, node)
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			if strings.HasPrefix(name, "invalid-") {
				checkInvalid(t, h, cat, res, terrs)
				return
			}
			if err := terrs.Err(); err != nil {
				t.Fatalf("tenant errors: %v", err)
			}
			checkPublishable(t, res, h.role)
			for kind, rs := range map[string][]types.Resource{
				"listeners": res.Listeners, "routes": res.Routes, "clusters": res.Clusters,
				"endpoints": res.Endpoints, "ratelimit": res.RateLimitConfigs, "virtualhosts": res.VirtualHosts,
			} {
				file := filepath.Join("testdata", "out", name+"."+kind+".yaml")
				got := toYAML(t, rs)
				if got == nil {
					if !*update {
						if _, err := os.Stat(file); err == nil {
							t.Errorf("%s exists but translation produced no %s", file, kind)
						}
					}
					continue
				}
				written[filepath.Base(file)] = true
				if *update {
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the translation (run go test -update and review the diff):\n%s", file, firstDiff(string(want), string(got)))
				}
			}
		})
	}
	// Only a clean run knows the complete set of outputs; a failed case
	// wrote nothing and must not lose its files.
	if *update && !t.Failed() {
		removeStale(t, written)
	}
}

func checkInvalid(t *testing.T, h caseHeader, cat *tenants.Catalog, res *Resources, terrs TenantErrors) {
	t.Helper()
	if h.errWant == "" {
		t.Fatal(`invalid-* input without an "# error:" header`)
	}
	if !strings.Contains(terrs.Error(), h.errWant) {
		t.Fatalf("tenant errors %q do not contain %q", terrs.Error(), h.errWant)
	}
	// The broken tenants are left out, every other one is still there.
	have := map[string]bool{}
	for _, c := range res.Clusters {
		have[strings.SplitN(nameOf(c), ".", 2)[0]] = true
	}
	for _, id := range cat.TenantIDs() {
		if _, broken := terrs[id]; !broken && !have[id] {
			t.Errorf("healthy tenant %s missing from the result", id)
		}
		if _, broken := terrs[id]; broken && have[id] {
			t.Errorf("broken tenant %s still has clusters", id)
		}
	}
	checkPublishable(t, res, h.role)
}

// checkPublishable asserts what the xds layer relies on: every resource
// passes ValidateAll, references are consistent, and (edge) go-control-
// plane's own snapshot consistency check agrees.
func checkPublishable(t *testing.T, res *Resources, role Role) {
	t.Helper()
	if err := Validate(res); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	snap, err := cachev3.NewSnapshot("1", res.ByType())
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	// Snapshot.Consistent ignores API listeners' RDS names (see
	// Consistent), so for the grpc role only our own check applies.
	if role == RoleEdge || role == RoleSidecar {
		if err := snap.Consistent(); err != nil {
			t.Fatalf("snapshot not consistent: %v", err)
		}
	}
}

// toYAML renders resources as a YAML list of their protojson form (keys
// sorted by the YAML encoder, so the output is deterministic).
func toYAML(t *testing.T, rs []types.Resource) []byte {
	t.Helper()
	if len(rs) == 0 {
		return nil
	}
	list := make([]any, len(rs))
	for i, r := range rs {
		b, err := protojson.Marshal(r)
		if err != nil {
			t.Fatalf("protojson: %v", err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		list[i] = v
	}
	out, err := yaml.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func removeStale(t *testing.T, written map[string]bool) {
	t.Helper()
	outs, err := filepath.Glob("testdata/out/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(outs)
	for _, f := range outs {
		if !written[filepath.Base(f)] {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
			t.Logf("removed stale %s", f)
		}
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n- " + a + "\n+ " + b
		}
	}
	return ""
}
