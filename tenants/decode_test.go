package tenants

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalTenant = "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\n"

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string // substrings of the single error
	}{
		{"unknown field", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {tier: free, colour: red}\n",
			[]string{`Tenant "a": spec.colour: unknown field`}},
		{"unknown nested field", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {routes: [{name: r, matches: {}}]}\n",
			[]string{`spec.routes[0].matches: unknown field (did you mean "match"?)`}},
		{"unknown field in retries", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {routes: [{name: r, retries: {attempt: 2}}]}\n",
			[]string{`spec.routes[0].retries.attempt: unknown field (did you mean "attempts"?)`}},
		{"invalid YAML", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: [a\n",
			[]string{"invalid YAML/JSON"}},
		{"invalid JSON", `{"apiVersion": "tenantmesh.io/v1alpha1", "kind": "Tenant"`,
			[]string{"invalid YAML/JSON"}},
		{"wrong type", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {maxConcurrentRequests: many}\n",
			[]string{`spec.maxConcurrentRequests: want an integer, got a string ("many")`}},
		{"duplicate key", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {tier: free, tier: standard}\n",
			[]string{`"tier" already set`}},
		{"missing kind", "apiVersion: tenantmesh.io/v1alpha1\nmetadata: {name: a}\n",
			[]string{"kind: missing kind"}},
		{"unknown kind", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenants\nmetadata: {name: a}\n",
			[]string{`unknown kind "Tenants"`}},
		{"wrong apiVersion", "apiVersion: tenantmesh.io/v1\nkind: Tenant\nmetadata: {name: a}\n",
			[]string{"apiVersion:", `got "tenantmesh.io/v1"`}},
		{"on twice", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {routes: [{name: r, retries: {on: [5xx], \"on\": [reset]}}]}\n",
			[]string{`spec.routes[0].retries.on: given twice (as "on" and as "true"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Decode("in.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("want an error, decoded %d documents", len(docs))
			}
			list := errorList(t, err)
			if len(list) != 1 || list[0].File != "in.yaml" || list[0].Doc != 1 {
				t.Fatalf("want one error for in.yaml document 1, got:\n%v", list)
			}
			for _, w := range tc.want {
				if !strings.Contains(list[0].Error(), w) {
					t.Errorf("error %q does not contain %q", list[0].Error(), w)
				}
			}
		})
	}
}

func TestDecodeMultiDocument(t *testing.T) {
	in := "# a leading comment only\n---\n" + fmt.Sprintf(minimalTenant, "a") + "---\n---   \n# only a comment\n---\n" + fmt.Sprintf(minimalTenant, "b")
	docs, err := Decode("multi.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Name() != "a" || docs[1].Name() != "b" {
		t.Fatalf("want tenants a and b, got %v", docs)
	}
	// Indexes count documents that hold something, so they match what a
	// user counts when reading the file.
	if docs[0].Index != 1 || docs[1].Index != 2 || docs[0].File != "multi.yaml" {
		t.Fatalf("indexes %d, %d; file %q", docs[0].Index, docs[1].Index, docs[0].File)
	}
}

// A bad document does not hide the problems of the others.
func TestDecodeReportsEveryBadDocument(t *testing.T) {
	in := fmt.Sprintf(minimalTenant, "a") + "---\nkind: Nope\n---\n" + fmt.Sprintf(minimalTenant, "b") + "---\napiVersion: x\nkind: Tier\n"
	_, err := Decode("f.yaml", []byte(in))
	list := errorList(t, err)
	if len(list) != 2 || list[0].Doc != 2 || list[1].Doc != 4 {
		t.Fatalf("want errors for documents 2 and 4, got:\n%v", list)
	}
}

func TestDecodeJSON(t *testing.T) {
	in := `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},
	        "spec":{"tier":"free","routes":[{"name":"r","match":{"pathPrefix":"/"},"upstream":"u",
	        "retries":{"attempts":1,"on":["5xx"]},"requestValidation":{"bodySchema":{"type":"object"}}}],
	        "upstreams":[{"name":"u","endpoints":[{"address":"10.0.0.1","port":80}]}]}}`
	docs, err := Decode("a.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tn := docs[0].Object.(*Tenant)
	r := tn.Spec.Routes[0]
	if tn.Spec.Tier != "free" || r.Retries.On[0] != "5xx" || string(r.RequestValidation.BodySchema) != `{"type":"object"}` {
		t.Fatalf("decoded %+v", tn.Spec)
	}
	if errs := Validate(tn, nil); len(errs) != 0 {
		t.Fatal(errs)
	}
}

// YAML 1.1 reads a bare `on` key as the boolean true; the documented
// manifests write it bare, so it must still mean retries.on.
func TestDecodeRetriesOnKey(t *testing.T) {
	for _, key := range []string{"on", `"on"`, "'on'"} {
		in := "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec:\n  routes:\n  - name: r\n    retries:\n      attempts: 2\n      " + key + ": [5xx, reset]\n"
		docs, err := Decode("r.yaml", []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		r := docs[0].Object.(*Tenant).Spec.Routes[0].Retries
		if r.Attempts != 2 || len(r.On) != 2 || r.On[1] != "reset" {
			t.Fatalf("%s: decoded %+v", key, r)
		}
		b, err := EncodeJSON(docs[0].Object)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"on":["5xx","reset"]`) {
			t.Fatalf("stored form must use \"on\": %s", b)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", fmt.Sprintf(minimalTenant, "from-b-yaml"))
	write("a.json", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tier","metadata":{"name":"from-a-json"}}`)
	write("c.yml", fmt.Sprintf(minimalTenant, "from-c-yml")+"---\n"+fmt.Sprintf(minimalTenant, "from-c-yml-2"))
	write("README.md", "not a manifest")
	write("notes.txt", "kind: Nope")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("sub.yaml/d.yaml", fmt.Sprintf(minimalTenant, "nested")) // not recursive

	docs, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, fmt.Sprintf("%s#%d:%s", filepath.Base(d.File), d.Index, d.Name()))
	}
	want := "a.json#1:from-a-json b.yaml#1:from-b-yaml c.yml#1:from-c-yml c.yml#2:from-c-yml-2"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}

	write("z.yaml", "kind: Nope\n")
	write("y.yaml", "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: y}\nspec: {bogus: 1}\n")
	_, err = Load(dir, nil)
	list := errorList(t, err)
	if len(list) != 2 || filepath.Base(list[0].File) != "y.yaml" || filepath.Base(list[1].File) != "z.yaml" {
		t.Fatalf("want errors of y.yaml and z.yaml, got:\n%v", list)
	}
}

func TestLoadStdinAndMissingFile(t *testing.T) {
	docs, err := Load("-", strings.NewReader(fmt.Sprintf(minimalTenant, "piped")))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].File != "-" || docs[0].Name() != "piped" {
		t.Fatalf("got %+v", docs)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); !os.IsNotExist(err) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}
