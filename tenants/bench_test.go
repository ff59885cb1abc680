package tenants

import (
	"fmt"
	"strings"
	"testing"
)

// The store validates every tenant it reads on a full sync (thousands) and
// each changed tenant on a watch event; these say what that costs.

func BenchmarkValidateTenant(b *testing.B) {
	tn, err := DecodeObject([]byte(baseTenant))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if errs := Validate(tn, nil); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkDecodeTenant(b *testing.B) {
	data := []byte(baseTenant)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeObject(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateDocuments applies 1,000 small tenants in one set, the
// shape of a bulk import.
func BenchmarkValidateDocuments(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "---\napiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: t%d}\n"+
			"spec: {tier: free, hosts: [t%d.example.com], routes: [{name: r, match: {pathPrefix: /}, upstream: u}],"+
			" upstreams: [{name: u, endpoints: [{address: 10.0.0.1, port: 80}]}]}\n", i, i)
	}
	docs, err := Decode("bulk.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateDocuments(docs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStoredTenant decodes the stored (JSON) form, what the
// store does for every tenant on a full sync.
func BenchmarkDecodeStoredTenant(b *testing.B) {
	tn, err := DecodeObject([]byte(baseTenant))
	if err != nil {
		b.Fatal(err)
	}
	data, err := EncodeJSON(tn)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeObject(data); err != nil {
			b.Fatal(err)
		}
	}
}
