// Package envoy holds small builders for the Envoy protos tenantmesh
// generates: one file per resource kind (listener, route, cluster,
// endpoint) and per HTTP filter, with every default in defaults.go.
//
// The builders know Envoy, not tenants: they take plain values and return
// protos, so the translation in xds/translate decides *what* to build and
// this package decides *how* it is spelled for Envoy. Every Any payload is
// marshalled deterministically (see Any), because context_extensions and
// other maps would otherwise produce different bytes, different hashes and
// needless pushes for identical configuration.
package envoy
