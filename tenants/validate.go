package tenants

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Validate checks one object on its own. tiers are the tiers a Tenant may
// name in addition to the built-in ones (nil: only the built-in tiers).
// Every problem is reported, not only the first, so a user fixes a
// manifest in one pass. The returned errors carry field paths relative to
// the document plus the object's kind and name; callers stamp the file and
// document index with ErrorList.WithSource.
func Validate(o Object, tiers map[string]*Tier) ErrorList {
	var e errs
	var kind Kind
	var name string
	switch v := o.(type) {
	case *Tenant:
		if v == nil {
			break
		}
		kind, name = KindTenant, v.Metadata.Name
		validateMeta(&e, &v.Metadata)
		validateTenantSpec(&e, "spec", &v.Spec, tiers)
		checkStorable(&e, "", reflect.ValueOf(v))
	case *Tier:
		if v == nil {
			break
		}
		kind, name = KindTier, v.Metadata.Name
		validateMeta(&e, &v.Metadata)
		validateTierSpec(&e, "spec", &v.Spec)
		checkStorable(&e, "", reflect.ValueOf(v))
	case *MeshConfig:
		if v == nil {
			break
		}
		kind, name = KindMeshConfig, v.Metadata.Name
		validateMeshMeta(&e, &v.Metadata)
		validateMeshSpec(&e, "spec", v)
		checkStorable(&e, "", reflect.ValueOf(v))
	case *SharedService:
		if v == nil {
			break
		}
		kind, name = KindSharedService, v.Metadata.Name
		validateMeta(&e, &v.Metadata)
		validateSharedServiceSpec(&e, "spec", &v.Spec)
		checkStorable(&e, "", reflect.ValueOf(v))
	}
	if kind == "" {
		// A nil or foreign Object is a programming error of the caller,
		// but reporting it keeps a bad call from crashing the control plane.
		return ErrorList{{Path: "kind", Cause: fmt.Sprintf("cannot validate %T: not a Tenant, Tier, MeshConfig or SharedService", o)}}
	}
	return e.list.WithSource("", 0, kind, name)
}

// ValidateDocuments validates documents that are applied together
// against the built-in tiers and existing: ValidateSet without a stored
// MeshConfig.
func ValidateDocuments(docs []Document, existing map[string]*Tier) error {
	return ValidateSet(docs, Stored{Tiers: existing})
}

// ValidateSet validates documents that are applied together: each one
// alone, and the set as a whole — no object twice, no host or unshared
// issuer claimed by two tenants of the set, no platform host or platform
// issuer claimed by a tenant (validate_reserved.go), no object too large
// for one etcd request. Tenants may name the built-in tiers, the stored
// ones and the tiers defined in docs themselves; the MeshConfig is the
// one in docs, else the stored one. It returns an ErrorList (each error
// carrying file and 1-based document index) or nil.
func ValidateSet(docs []Document, stored Stored) error {
	tiers := make(map[string]*Tier, len(stored.Tiers))
	for name, t := range stored.Tiers {
		tiers[name] = t
	}
	mesh := stored.Mesh
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *Tier:
			if o != nil {
				tiers[o.Metadata.Name] = o
			}
		case *MeshConfig:
			if o != nil && o.Metadata.Name == MeshConfigName {
				mesh = o
			}
		}
	}
	res := reservedOf(mesh)

	type objectKey struct {
		kind Kind
		name string
	}
	seen := make(map[objectKey]Document, len(docs))
	hosts := map[string]Document{} // lower-cased host → first tenant claiming it
	issuers := map[string][]issuerHolder{}
	var list ErrorList
	for _, d := range docs {
		if !hasObject(d) {
			list = append(list, FieldError{File: d.File, Doc: d.Index, Cause: "document holds no object"})
			continue
		}
		kind, name := d.Kind(), d.Name()
		var e errs
		k := objectKey{kind, name}
		if first, dup := seen[k]; dup {
			e.add("metadata.name", "%s %q is defined twice in this set (first at %s)", kind, name, where(first))
		} else {
			seen[k] = d
		}
		checkEncodedSize(&e, d.Object)
		if t, ok := d.Object.(*Tenant); ok {
			checkSetHosts(&e, t, d, hosts)
			checkReserved(&e, t, res)
			checkSetIssuers(&e, t, d, res, issuers)
		}
		list = append(list, e.list.WithSource(d.File, d.Index, kind, name)...)
		list = append(list, Validate(d.Object, tiers).WithSource(d.File, d.Index, kind, name)...)
	}
	return list.Err()
}

// hasObject reports whether d carries a usable object; a typed nil pointer
// would otherwise panic in d.Kind().
func hasObject(d Document) bool {
	switch v := d.Object.(type) {
	case *Tenant:
		return v != nil
	case *Tier:
		return v != nil
	case *MeshConfig:
		return v != nil
	case *SharedService:
		return v != nil
	}
	return false
}

func where(d Document) string {
	if d.File == "" {
		return fmt.Sprintf("document %d", d.Index)
	}
	return fmt.Sprintf("%s document %d", d.File, d.Index)
}

// checkEncodedSize rejects an object that etcd would refuse: its stored
// form travels in one request, and etcd caps requests at 1.5 MiB.
func checkEncodedSize(e *errs, o Object) {
	b, err := EncodeJSON(o)
	if err != nil {
		e.add("", "cannot be encoded as JSON: %v", err)
		return
	}
	if len(b) > MaxDocumentBytes {
		e.add("", "encoded object is %d bytes, larger than etcd's 1.5 MiB request limit (at most %d bytes)", len(b), MaxDocumentBytes)
	}
}

// checkSetHosts reports a host that another tenant of the same set claims
// too. Conflicts with tenants already stored are the Catalog's to resolve
// (older tenant wins); inside one apply there is no "older", so refuse.
func checkSetHosts(e *errs, t *Tenant, d Document, owners map[string]Document) {
	for i, h := range t.Spec.Hosts {
		key := strings.ToLower(h)
		first, taken := owners[key]
		switch {
		case !taken:
			owners[key] = d
		case first.Name() != t.Metadata.Name:
			e.add(Path("spec.hosts").Index(i), "host %q is also claimed by tenant %q (%s)", h, first.Name(), where(first))
		}
	}
}

func validateMeta(e *errs, m *ObjectMeta) {
	if msg := dnsLabelProblem(m.Name); msg != "" {
		e.add("metadata.name", "%s", msg)
	}
	validateLabels(e, "metadata.labels", m.Labels)
}

func validateMeshMeta(e *errs, m *ObjectMeta) {
	if m.Name != MeshConfigName {
		e.add("metadata.name", "%q: the MeshConfig is a singleton and must be named %q", m.Name, MeshConfigName)
	}
	validateLabels(e, "metadata.labels", m.Labels)
}

// validateLabels keeps labels printable: they are free-form, but they end
// up in tables and logs.
func validateLabels(e *errs, p Path, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		switch {
		case k == "":
			e.add(p, "label keys must not be empty")
		case !printable(k):
			e.add(p.Key(k), "label key must be printable UTF-8 without control characters")
		case !printable(labels[k]):
			e.add(p.Key(k), "label value must be printable UTF-8 without control characters")
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
