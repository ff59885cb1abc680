package tenants

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The examples are what the README, the demo and `make run` use; a broken
// example is a broken quickstart.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../examples/tenants/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d example files, want tenant-a, tenant-b and mesh at least", len(files))
	}
	var all []Document
	for _, f := range files {
		docs, err := loadFile(t, f)
		if err != nil {
			t.Errorf("%s does not decode:\n%v", f, err)
			continue
		}
		all = append(all, docs...)
	}
	// Applied together, as `serve --preload examples/tenants` does.
	if err := ValidateDocuments(all, nil); err != nil {
		t.Fatalf("examples do not validate:\n%v", err)
	}

	var in Input
	for _, d := range all {
		switch o := d.Object.(type) {
		case *Tenant:
			in.Tenants = append(in.Tenants, o)
		case *Tier:
			in.Tiers = append(in.Tiers, o)
		case *MeshConfig:
			in.Mesh = o
		}
	}
	c := NewCatalog(in, nil)
	if len(c.Rejected()) > 0 {
		t.Fatalf("Catalog rejected example tenants: %v", c.Rejected())
	}
	for _, id := range []string{"tenant-a", "tenant-b"} {
		tn, ok := c.Tenant(id)
		if !ok {
			t.Fatalf("example tenant %s missing", id)
		}
		if tn.Spec.Tier != "enterprise" || !tn.Spec.Auth.APIKeys {
			t.Errorf("%s: tier %q apiKeys %v, want enterprise tier with API keys", id, tn.Spec.Tier, tn.Spec.Auth.APIKeys)
		}
		if got, ok := c.TenantByHost(id + ".api.example.com"); !ok || got.ID() != id {
			t.Errorf("host %s.api.example.com does not resolve to %s", id, id)
		}
	}
	if got := DefaultedMeshConfig(nil).Spec; !sameMeshSpec(got, c.Mesh().Spec) {
		t.Errorf("examples/tenants/mesh.yaml should spell out the defaults:\n got %+v\nwant %+v", c.Mesh().Spec, got)
	}
}

func sameMeshSpec(a, b MeshConfigSpec) bool {
	return a.EdgePort == b.EdgePort && a.SidecarInboundPort == b.SidecarInboundPort &&
		a.SidecarOutboundPort == b.SidecarOutboundPort && a.Authz == b.Authz &&
		a.RateLimit == b.RateLimit && a.ControlPlaneAdmin == b.ControlPlaneAdmin && len(a.JWT) == len(b.JWT)
}

// Every file in examples/invalid is refused with at least one error that
// names a field path, the way the docs show.
func TestInvalidExamplesFail(t *testing.T) {
	files, err := filepath.Glob("../examples/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d invalid examples, want at least 2", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			docs, err := loadFile(t, f)
			if err == nil {
				err = ValidateDocuments(docs, nil)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("want an ErrorList, got %v", err)
			}
			for _, fe := range list {
				if fe.Path == "" {
					t.Errorf("error without field path: %v", fe)
				}
				if fe.File != f || fe.Doc != 1 {
					t.Errorf("error names %s document %d, want %s document 1", fe.File, fe.Doc, f)
				}
				// The docs quote these messages in the file's header comment.
				if !strings.Contains(readFile(t, f), string(fe.Path)) {
					t.Errorf("%s does not mention the path %s it fails with", f, fe.Path)
				}
			}
		})
	}
}

func loadFile(t *testing.T, f string) ([]Document, error) {
	t.Helper()
	return Load(f, nil)
}

func readFile(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
