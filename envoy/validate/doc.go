// Package validate checks Envoy resources the way Envoy checks them when it
// loads them, so that nothing Envoy would reject reaches a cache. No Envoy
// runs in this project's CI: this package is what stands in for it.
//
// It knows nothing of tenants. Three layers, each citing the Envoy source
// that states the rule it copies:
//
//   - Deep: the protoc-gen-validate rules (ValidateAll) of a resource and of
//     every message packed in a google.protobuf.Any anywhere inside it —
//     filter configs, typed_per_filter_config, match-tree actions, access
//     loggers, typed extensions. ValidateAll alone stops at an Any.
//   - Resource: Envoy's load-time rules for one resource that no proto
//     annotation states (domains, header mutations, regexes, filter order,
//     direct response sizes, EDS addresses, …).
//   - Set: the rules that only a whole resource set can check (unique
//     names, domains unique across a route configuration and its VHDS
//     virtual hosts, typed_per_filter_config keys that name a filter of the
//     chain that uses the route configuration).
//
// Every error names the resource, the field path and the reason; a check
// reports every problem it finds, joined, not only the first.
package validate
