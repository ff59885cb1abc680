// Package contract holds the names tenantmesh's parts and its clients
// must agree on, each declared once: the node roles and node metadata keys
// a bootstrap writes and the xDS server reads, the names of the resources
// Envoy is sent (bootstraps, dashboards and proxyless gRPC clients depend
// on them), the headers the edge, ext_authz and backends exchange, the
// context extensions and metadata keys the translation and ext_authz pass
// through Envoy, and the x-tenant-context issuer and key set path.
//
// Changing a value here changes the wire contract: deployed bootstraps,
// backends or dashboards stop matching. The package imports nothing of
// tenantmesh (only the standard library), so every layer may depend on it
// without an import running back up.
package contract
