// Package translate turns a tenants.Catalog into Envoy resources for one
// node role. It is pure: no I/O, no goroutines, no clocks — the same
// Catalog and role always give byte-identical resources, which is what the
// golden tests in testdata/ pin and what lets the xds layer hash, cache and
// diff resources. It reads what the Catalog resolved when it admitted
// each object (tenants/resolved.go: defaults applied, durations typed)
// and applies no default of its own.
//
// Translation is split in two so the xds layer can redo only what changed:
// TranslateTenant turns one tenant into its own resources (cacheable by
// the *tenants.Tenant pointer, which the Catalog keeps stable for
// unchanged tenants), and Assemble joins the per-tenant parts into the
// role's full resource set (listeners, the edge route configuration, the
// shared service clusters, the RateLimitConfig). Translate does both.
//
// A tenant that cannot be translated is reported in TenantErrors and left
// out; it never stops the others.
package translate
