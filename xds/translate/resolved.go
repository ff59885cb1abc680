package translate

import (
	"errors"
	"fmt"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// errNotAdmitted: translation reads the values the Catalog resolved when
// it admitted an object (tenants/resolved.go) and applies no default of
// its own, so an object that did not come out of a Catalog — or a copy
// of one that did — cannot be translated.
var errNotAdmitted = errors.New("not admitted by a Catalog: it has no resolved values")

func resolvedTenant(t *tenants.Tenant) (*tenants.ResolvedTenant, error) {
	r, ok := t.Resolved()
	if !ok {
		return nil, errNotAdmitted
	}
	return r, nil
}

func resolvedMesh(m *tenants.MeshConfig) (*tenants.ResolvedMesh, error) {
	r, ok := m.Resolved()
	if !ok {
		return nil, fmt.Errorf("MeshConfig: %w", errNotAdmitted)
	}
	return r, nil
}

func resolvedShared(s *tenants.SharedService) (*tenants.ResolvedSharedService, error) {
	r, ok := s.Resolved()
	if !ok {
		return nil, fmt.Errorf("shared service %s: %w", s.Name(), errNotAdmitted)
	}
	return r, nil
}
