package tenants

import (
	"fmt"
	"strings"
	"testing"
)

// names lists the decoded documents as "index:name".
func names(docs []Document) string {
	var out []string
	for _, d := range docs {
		out = append(out, fmt.Sprintf("%d:%s", d.Index, d.Name()))
	}
	return strings.Join(out, " ")
}

// Every way of separating or ending documents that YAML allows yields
// every document: none is silently dropped.
func TestDecodeNeverDropsADocument(t *testing.T) {
	a, b := fmt.Sprintf(minimalTenant, "a"), fmt.Sprintf(minimalTenant, "b")
	cases := map[string]string{
		"comment after the separator":     a + "--- # the tenant\n" + b,
		"tab and comment after separator": a + "---\t# b\n" + b,
		"end marker then a bare document": a + "...\n" + b,
		"end marker with a comment":       a + "... # end of a\n" + b,
		"end marker then separator":       a + "...\n---\n" + b,
		"content on the separator line":   a + "--- {apiVersion: tenantmesh.io/v1alpha1, kind: Tenant, metadata: {name: b}}\n",
		"BOM at the start":                "\uFEFF" + a + "---\n" + b,
		"BOM before a separator (cat)":    a + "\uFEFF--- # b.yaml\n" + b,
		"BOM after a separator":           a + "---\n\uFEFF" + b,
		"CRLF line ends":                  strings.ReplaceAll(a+"--- # b\n"+b, "\n", "\r\n"),
		"separator ended by U+2028":       a + "---\u2028" + b,
		"separator ended by NEL":          a + "---\u0085" + b,
		"directive before the second":     a + "...\n%YAML 1.1\n---\n" + b,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			docs, err := Decode("two.yaml", []byte(in))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := names(docs); got != "1:a 2:b" {
				t.Fatalf("got documents %q, want \"1:a 2:b\" from:\n%q", got, in)
			}
		})
	}
}

func TestDecodeMarkerProblemsAreReported(t *testing.T) {
	a, b := fmt.Sprintf(minimalTenant, "a"), fmt.Sprintf(minimalTenant, "b")
	docs, err := Decode("m.yaml", []byte(a+"... b: 1\n"+b))
	list := errorList(t, err)
	if len(list) != 1 || list[0].Doc != 1 || !strings.Contains(list[0].Cause, `line 4: only a comment may follow the document end marker "...", got "b: 1"`) {
		t.Fatalf("got %v", list)
	}
	// The document's own problems are reported with the marker's.
	_, err = Decode("m.yaml", []byte("kind: Tenant\napiVersion: v9\n... junk\n"))
	if list := errorList(t, err); len(list) != 2 || list[1].Path != "apiVersion" {
		t.Fatalf("got %v", list)
	}
	if names(docs) != "2:b" {
		t.Fatalf("the other document must still decode, got %q", names(docs))
	}
}

func TestDecodeJSONDuplicateKeys(t *testing.T) {
	cases := []struct{ name, in, path, cause string }{
		{"spec field", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{"tier":"free","tier":"enterprise"}}`,
			"spec.tier", "given twice"},
		{"top level", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","kind":"Tier","metadata":{"name":"a"}}`,
			"kind", "given twice"},
		{"map entry", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a","labels":{"x":"1","x":"2"}}}`,
			`metadata.labels["x"]`, "given twice"},
		{"inside a body schema", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{"routes":[{"name":"r","match":{"path":"/"},"upstream":"u","requestValidation":{"bodySchema":{"type":"object","type":"string"}}}]}}`,
			"spec.routes[0].requestValidation.bodySchema.type", "given twice"},
		{"case variant", `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{"tier":"free","Tier":"enterprise"}}`,
			"spec.Tier", `unknown field (field names are case-sensitive: did you mean "tier"?)`},
		{"BOM before the object", "\uFEFF" + `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{"tier":"free","tier":"enterprise"}}`,
			"spec.tier", "given twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Decode("a.json", []byte(tc.in))
			list := errorList(t, err)
			if len(docs) != 0 || len(list) != 1 || list[0].Path != Path(tc.path) || !strings.HasPrefix(list[0].Cause, tc.cause) {
				t.Fatalf("want one error %s: %s…, got %d documents and:\n%v", tc.path, tc.cause, len(docs), list)
			}
		})
	}
}

// YAML keys that become the same JSON field name are refused, not
// resolved by map iteration order.
func TestDecodeYAMLKeyCollision(t *testing.T) {
	in := "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: a\n  labels: {1: x, \"1\": y}\n"
	_, err := Decode("c.yaml", []byte(in))
	list := errorList(t, err)
	if len(list) != 1 || list[0].Path != `metadata.labels["1"]` || !strings.Contains(list[0].Cause, "given twice") {
		t.Fatalf("got %v", list)
	}
}

// One bad document hides nothing: every problem of every document comes
// out of one Decode and one ValidateDocuments, each with file, document,
// object and field path.
func TestDecodeAndValidateReportEverythingAtOnce(t *testing.T) {
	in := "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: a}\nspec: {tier: free, bogusField: 1, maxConcurrentRequests: many}\n" +
		"---\n" + fmt.Sprintf(tenantDoc, "b", "platinum", "b.example.com") +
		"--- # c\n" + `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"c"},"spec":{"tier":"free","tier":"enterprise"}}` + "\n" +
		"---\napiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: d}\nspec:\n  routes:\n  - name: r\n    match: {pathPrefix: [/]\n"
	docs, err := Decode("all.yaml", []byte(in))
	list := errorList(t, err)
	if names(docs) != "2:b" {
		t.Fatalf("documents that decode are returned beside the errors, got %q", names(docs))
	}
	list = append(list, errorList(t, ValidateDocuments(docs, nil))...)
	want := []string{
		`all.yaml (document 1): Tenant "a": spec.bogusField: unknown field`,
		`all.yaml (document 1): Tenant "a": spec.maxConcurrentRequests: want an integer, got a string ("many")`,
		`all.yaml (document 3): Tenant "c": spec.tier: given twice`,
		`all.yaml (document 4): invalid YAML/JSON: line 19: did not find expected ',' or '}'`,
		`all.yaml (document 2): Tenant "b": spec.tier: unknown tier "platinum"`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), list)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant %s…", i, list[i].Error(), w)
		}
	}
}

func TestDecodeUnknownFieldsEverywhereHavePaths(t *testing.T) {
	in := `apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default, colour: red}
spec:
  edgePort: 10000
  jwt:
  - issuer: https://idp
    jwks: "{}"
    tenantclaim: org
  authz: {adress: "127.0.0.1:9191"}
`
	_, err := Decode("m.yaml", []byte(in))
	list := errorList(t, err)
	var got []string
	for _, e := range list {
		got = append(got, string(e.Path)+": "+e.Cause)
	}
	want := []string{
		"metadata.colour: unknown field",
		`spec.authz.adress: unknown field (did you mean "address"?)`,
		`spec.jwt[0].tenantclaim: unknown field (field names are case-sensitive: did you mean "tenantClaim"?)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeRefusesDeepNesting(t *testing.T) {
	schema := strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting)
	in := `{"apiVersion":"tenantmesh.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{"routes":[{"name":"r","requestValidation":{"bodySchema":` + schema + `}}]}}`
	_, err := Decode("deep.json", []byte(in))
	list := errorList(t, err)
	if len(list) != 1 || !strings.HasPrefix(string(list[0].Path), "spec.routes[0].requestValidation.bodySchema[0][0]") ||
		!strings.HasSuffix(string(list[0].Path), "…") || list[0].Cause != "nested deeper than 1000 levels" {
		t.Fatalf("got %v", list)
	}
	// Deep, but within the limit: fine as far as decoding goes.
	ok := strings.Repeat("[", 900) + strings.Repeat("]", 900)
	if _, err := Decode("ok.json", []byte(strings.Replace(in, schema, ok, 1))); err != nil {
		t.Fatalf("900 levels: %v", err)
	}
}
