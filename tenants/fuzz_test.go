package tenants

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecode feeds arbitrary bytes through what `tenant apply` and the
// store do with a manifest. Properties:
//   - decoding and validation never panic, and report through ErrorList;
//   - nothing is silent: every document of the stream is decoded or
//     named (file, document) by an error with a cause;
//   - a valid object survives the stored form: EncodeJSON, then decoding
//     again, gives the same object, which is still valid. The store and
//     every control plane replica read the stored form, so a difference
//     here would be a tenant that means one thing in the CLI and another
//     in Envoy.
//
// The seed corpus lives in testdata/fuzz/FuzzDecode; the examples are
// added here so that they stay seeds as they evolve.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"../examples/tenants/*.yaml", "../examples/invalid/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range []string{baseTenant, baseTier, baseMesh} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Decode("fuzz.yaml", data)
		// Nothing is silent: every document the stream holds is either
		// decoded or named by an error, never both, never neither.
		reported := map[int]bool{}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Decode error is not a non-empty ErrorList: %#v", err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Doc < 1 || e.Cause == "" {
					t.Fatalf("error without file, document or cause: %#v", e)
				}
				reported[e.Doc] = true
			}
		}
		for _, d := range docs {
			if reported[d.Index] || d.File != "fuzz.yaml" || !hasObject(d) {
				t.Fatalf("document %d both decoded and reported, or decoded without an object: %#v", d.Index, d)
			}
		}
		if n := len(splitDocuments(data)); len(docs)+len(reported) != n {
			t.Fatalf("%d documents in the stream, %d decoded and %d reported", n, len(docs), len(reported))
		}
		if err := ValidateDocuments(docs, nil); err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("ValidateDocuments error is not a non-empty ErrorList: %#v", err)
			}
		}
		for _, d := range docs {
			if len(Validate(d.Object, nil)) > 0 {
				continue
			}
			stored, err := EncodeJSON(d.Object)
			if err != nil {
				t.Fatalf("valid object does not encode: %v", err)
			}
			again, err := DecodeObject(stored)
			if err != nil {
				t.Fatalf("stored form does not decode: %v\n%s", err, stored)
			}
			// Empty and absent lists/maps mean the same; the stored form
			// omits both.
			// Raw JSON (a body schema) is compared by meaning: "<" and
			// "\u003c" are the same string. Decoded objects have no
			// resolved view (the only unexported fields) until admitted.
			if diff := cmp.Diff(d.Object, again, cmpopts.EquateEmpty(), cmp.Comparer(sameJSON),
				cmpopts.IgnoreUnexported(Tenant{}, MeshConfig{}, SharedService{})); diff != "" {
				t.Fatalf("stored form decodes to a different object (-before +after):\n%s\nstored: %s", diff, stored)
			}
			if errs := Validate(again, nil); len(errs) > 0 {
				t.Fatalf("stored form no longer validates: %v\nstored: %s", errs, stored)
			}
		}
	})
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return cmp.Equal(x, y)
}
