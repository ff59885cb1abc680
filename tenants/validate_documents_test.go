package tenants

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func decodeSet(t *testing.T, file, data string) []Document {
	t.Helper()
	docs, err := Decode(file, []byte(data))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return docs
}

func errorList(t *testing.T, err error) ErrorList {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	return list
}

const (
	tenantDoc = "apiVersion: tenantmesh.io/v1alpha1\nkind: Tenant\nmetadata: {name: %s}\nspec: {tier: %s, hosts: [%s]}\n"
	tierDoc   = "apiVersion: tenantmesh.io/v1alpha1\nkind: Tier\nmetadata: {name: %s}\nspec: {priority: high}\n"
)

func doc(format string, args ...any) string { return fmt.Sprintf(format, args...) + "---\n" }

func TestValidateDocumentsDuplicateObject(t *testing.T) {
	docs := decodeSet(t, "set.yaml",
		doc(tenantDoc, "a", "free", "a.example.com")+
			doc(tierDoc, "a")+ // same name, other kind: fine
			doc(tenantDoc, "a", "free", "a2.example.com"))
	list := errorList(t, ValidateDocuments(docs, nil))
	if len(list) != 1 {
		t.Fatalf("want one error, got:\n%v", list)
	}
	e := list[0]
	if e.File != "set.yaml" || e.Doc != 3 || e.Kind != KindTenant || e.Name != "a" || e.Path != "metadata.name" ||
		!strings.Contains(e.Cause, "defined twice") || !strings.Contains(e.Cause, "set.yaml document 1") {
		t.Fatalf("got %#v", e)
	}
}

func TestValidateDocumentsTiers(t *testing.T) {
	t.Run("tier defined in the same set", func(t *testing.T) {
		docs := decodeSet(t, "set.yaml", doc(tenantDoc, "a", "gold", "a.example.com")+doc(tierDoc, "gold"))
		if err := ValidateDocuments(docs, nil); err != nil {
			t.Fatalf("a tier applied with the tenant counts, got:\n%v", err)
		}
	})
	t.Run("tier already stored", func(t *testing.T) {
		docs := decodeSet(t, "set.yaml", doc(tenantDoc, "a", "gold", "a.example.com"))
		if err := ValidateDocuments(docs, map[string]*Tier{"gold": {Metadata: ObjectMeta{Name: "gold"}}}); err != nil {
			t.Fatalf("an existing tier counts, got:\n%v", err)
		}
	})
	t.Run("unknown tier", func(t *testing.T) {
		docs := decodeSet(t, "set.yaml", doc(tierDoc, "silver")+doc(tenantDoc, "a", "gold", "a.example.com"))
		list := errorList(t, ValidateDocuments(docs, nil))
		if len(list) != 1 || list[0].Path != "spec.tier" || list[0].Doc != 2 || !strings.Contains(list[0].Cause, `unknown tier "gold"`) {
			t.Fatalf("got:\n%v", list)
		}
	})
}

func TestValidateDocumentsHostClaimedTwice(t *testing.T) {
	docs := decodeSet(t, "set.yaml",
		doc(tenantDoc, "a", "free", "shared.example.com")+
			doc(tenantDoc, "b", "free", "Shared.example.com"))
	list := errorList(t, ValidateDocuments(docs, nil))
	var found bool
	for _, e := range list {
		if e.Doc == 2 && e.Name == "b" && e.Path == "spec.hosts[0]" && strings.Contains(e.Cause, `also claimed by tenant "a"`) {
			found = true
		}
		if e.Doc == 1 {
			t.Errorf("the first tenant claiming a host keeps it, got %v", e)
		}
	}
	if !found {
		t.Fatalf("want the second tenant's host refused, got:\n%v", list)
	}
}

func TestValidateDocumentsTooLarge(t *testing.T) {
	docs := decodeSet(t, "big.yaml", doc(tenantDoc, "a", "free", "a.example.com"))
	docs[0].Object.GetMeta().Labels = map[string]string{"padding": strings.Repeat("x", MaxDocumentBytes)}
	list := errorList(t, ValidateDocuments(docs, nil))
	if len(list) != 1 || list[0].Path != "" || list[0].File != "big.yaml" || list[0].Doc != 1 ||
		!strings.Contains(list[0].Cause, "larger than etcd's 1.5 MiB request limit") {
		t.Fatalf("got:\n%v", list)
	}

	docs[0].Object.GetMeta().Labels["padding"] = strings.Repeat("x", MaxDocumentBytes-1024)
	if err := ValidateDocuments(docs, nil); err != nil {
		t.Fatalf("an object under the limit is fine, got: %v", err)
	}
}

// Errors of every document are reported together, each with its source,
// and formatted the way the CLI prints them.
func TestValidateDocumentsSourcesAndMessage(t *testing.T) {
	docs := decodeSet(t, "tenants.yaml",
		doc(tenantDoc, "good", "free", "good.example.com")+
			doc(tenantDoc, "Bad", "free", "bad.example.com")+
			doc(tenantDoc, "worse", "platinum", "worse.example.com:80"))
	list := errorList(t, ValidateDocuments(docs, nil))
	want := []string{
		`tenants.yaml (document 2): Tenant "Bad": metadata.name: "Bad" is not a DNS label`,
		`tenants.yaml (document 3): Tenant "worse": spec.tier: unknown tier "platinum"`,
		`tenants.yaml (document 3): Tenant "worse": spec.hosts[0]: "worse.example.com:80" must not carry a port`,
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

func TestValidateDocumentsNilObject(t *testing.T) {
	err := ValidateDocuments([]Document{{File: "x.yaml", Index: 4}, {File: "x.yaml", Index: 5, Object: (*Tenant)(nil)}}, nil)
	list := errorList(t, err)
	if len(list) != 2 || list[0].Doc != 4 || list[1].Doc != 5 {
		t.Fatalf("got %v", list)
	}
}

func TestValidateDocumentsEmpty(t *testing.T) {
	if err := ValidateDocuments(nil, nil); err != nil {
		t.Fatalf("no documents: %v", err)
	}
}
