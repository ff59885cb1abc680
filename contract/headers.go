package contract

// Request headers (Envoy lower-cases header names).
const (
	// HeaderTenantID is the tenant a request is for: a client may send it
	// as a claim, ext_authz overwrites it with the verified tenant, and a
	// sidecar overwrites it with its own tenant.
	HeaderTenantID = "x-tenant-id"
	// HeaderTenantTier is the verified tenant's tier, set on allow.
	HeaderTenantTier = "x-tenant-tier"
	// HeaderTenantContext carries the x-tenant-context token: a compact
	// JWS ext_authz mints on allow and sidecars verify.
	HeaderTenantContext = "x-tenant-context"
	// TenantHeaderPrefix starts every header only tenantmesh may set; the
	// edge strips the client's (HeaderTenantID aside, which ext_authz
	// compares with the credential and then overwrites).
	TenantHeaderPrefix = "x-tenant-"
	// HeaderAPIKey carries a tenant API key.
	HeaderAPIKey = "x-api-key"
	// HeaderReason is the response header naming the reason of a denial.
	HeaderReason = "x-tenantmesh-reason"
)

// The x-tenant-context token and where its verification keys are published.
const (
	// ContextTokenIssuer is the iss of every x-tenant-context token.
	ContextTokenIssuer = "tenantmesh"
	// JWKSPath is where the control plane's admin server publishes the
	// x-tenant-context keys as a JWK Set.
	JWKSPath = "/.well-known/jwks.json"
)

// Context extensions the translation sets on every route ext_authz checks
// (ext_authz CheckSettings.context_extensions) and the authz service reads.
const (
	// ExtTenantID and ExtRoute name the tenant and route of a tenant route.
	ExtTenantID = "tenant_id"
	ExtRoute    = "route"
	// ExtSharedService names the shared service of a shared service route,
	// which carries it instead of ExtTenantID and ExtRoute.
	ExtSharedService = "shared_service"
)

// Keys naming the verified tenant, the same in ext_authz's allow dynamic
// metadata and in the x-tenant-context claims, so an access log or an
// RBAC principal reads either the same way.
const (
	KeyTenantID = "tenant_id"
	KeyTier     = "tier"
	// DenialReasonKey is the dynamic metadata key under which ext_authz's
	// answer carries the reason of every denial the service decided.
	DenialReasonKey = "denial_reason"
)

// Metadata namespaces.
const (
	// ExtAuthzNamespace is the dynamic metadata namespace Envoy stores the
	// authz service's CheckResponse.dynamic_metadata under: always this
	// name, whatever the filter is called (Filter::onComplete,
	// source/extensions/filters/http/ext_authz/ext_authz.cc).
	ExtAuthzNamespace = "envoy.filters.http.ext_authz"
	// RouteMetadataNamespace is tenantmesh's route metadata namespace.
	RouteMetadataNamespace = "tenantmesh"
	// ContextPayloadKey is where jwt_authn stores the verified
	// x-tenant-context claims (payload_in_metadata, in jwt_authn's dynamic
	// metadata namespace), which is what a sidecar's RBAC matches on.
	ContextPayloadKey = "tenantmesh"
)
