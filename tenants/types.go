// Package tenants holds the tenantmesh user API (Tenant, Tier, MeshConfig),
// its strict decoding, validation and defaulting, and the Catalog: the
// validated, resolved, immutable intermediate representation every other
// part reads (resolved.go says what "resolved" holds).
package tenants

import (
	"encoding/json"
	"time"
)

// APIVersion is the only API version this build understands.
const APIVersion = "tenantmesh.io/v1alpha1"

// Kind names a document type.
type Kind string

// The kinds of documents tenantmesh stores.
const (
	KindTenant     Kind = "Tenant"
	KindTier       Kind = "Tier"
	KindMeshConfig Kind = "MeshConfig"
	// KindSharedService: see SharedService (shared.go).
	KindSharedService Kind = "SharedService"
)

// MeshConfigName is the name of the MeshConfig singleton.
const MeshConfigName = "default"

// TypeMeta identifies the schema of a document.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       Kind   `json:"kind"`
}

// ObjectMeta is the metadata common to every document.
type ObjectMeta struct {
	// Name is the object's id (for a Tenant: the tenant id, a DNS label).
	Name string `json:"name"`
	// ResourceVersion is the etcd mod revision the object was read at. Set
	// it on apply to fail when somebody else changed the object since
	// (optimistic concurrency); leave it empty to overwrite.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Labels are free-form and not interpreted by tenantmesh.
	Labels map[string]string `json:"labels,omitempty"`
}

// Object is implemented by every document kind.
type Object interface {
	GetTypeMeta() *TypeMeta
	GetMeta() *ObjectMeta
}

// Tenant is one customer organisation.
type Tenant struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     TenantSpec `json:"spec"`
	// resolved is attached by DefaultedTenant (resolved.go).
	resolved *ResolvedTenant
}

// TenantStatus is the lifecycle state of a tenant.
type TenantStatus string

// Tenant states. Suspended tenants keep their routes; authz answers 403.
const (
	StatusActive    TenantStatus = "active"
	StatusSuspended TenantStatus = "suspended"
)

// TenantSpec is the desired state of a tenant.
type TenantSpec struct {
	DisplayName string       `json:"displayName,omitempty"`
	Tier        string       `json:"tier,omitempty"`
	Status      TenantStatus `json:"status,omitempty"`
	Features    []string     `json:"features,omitempty"`
	// Hosts identify the tenant by Host header; they get their own virtual host.
	Hosts []string `json:"hosts,omitempty"`
	// PathPrefix also mounts the routes at /tenants/<id>/... on every host.
	PathPrefix bool        `json:"pathPrefix,omitempty"`
	Auth       AuthSpec    `json:"auth,omitempty"`
	Routes     []Route     `json:"routes,omitempty"`
	Upstreams  []Upstream  `json:"upstreams,omitempty"`
	RateLimits *RateLimits `json:"rateLimits,omitempty"`
	// MaxConcurrentRequests caps in-flight requests per upstream cluster
	// (circuit breaker max_requests); the tier gives the default.
	MaxConcurrentRequests int         `json:"maxConcurrentRequests,omitempty"`
	Errors                *ErrorsSpec `json:"errors,omitempty"`
	Isolation             *Isolation  `json:"isolation,omitempty"`
	// Audit is the tenant's audit-trail policy.
	Audit *TenantAudit `json:"audit,omitempty"`
}

// TenantAudit is a tenant's audit-trail policy.
type TenantAudit struct {
	// Retention is how long the tenant's audit records are kept before
	// compaction replaces them with a signed summary; unset: forever.
	Retention Duration `json:"retention,omitempty"`
}

// AuthSpec says how requests of the tenant authenticate.
type AuthSpec struct {
	// JWT lists the tenant's own issuers; each may only vouch for this tenant.
	JWT []JWTIssuer `json:"jwt,omitempty"`
	// APIKeys allows API keys created with `tenantmesh apikey create`.
	APIKeys bool `json:"apiKeys,omitempty"`
}

// JWTIssuer is a trusted token issuer.
type JWTIssuer struct {
	Issuer    string   `json:"issuer"`
	Audiences []string `json:"audiences,omitempty"`
	// JWKSURI is fetched and cached by kid; JWKS is an inline key set. Exactly one is set.
	JWKSURI    string   `json:"jwksUri,omitempty"`
	JWKS       string   `json:"jwks,omitempty"`
	Algorithms []string `json:"algorithms,omitempty"`
	// TenantClaim names the claim carrying the tenant id (default tenant_id).
	TenantClaim string `json:"tenantClaim,omitempty"`
	// RolesClaim names the claim carrying roles (default roles).
	RolesClaim string `json:"rolesClaim,omitempty"`

	// Issuer sharing (validate_reserved.go, README "Issuer sharing").

	// Shared declares this side's consent to share the issuer. On a
	// tenant's issuer: other tenants may list the same issuer, if they set
	// shared too. On a MeshConfig issuer: tenants may list this platform
	// issuer as their own, if they set shared too. An issuer listed
	// without the consent of every side is refused at apply and rejected
	// in the catalog.
	Shared bool `json:"shared,omitempty"`
}

// Route is one tenant API route.
type Route struct {
	Name     string     `json:"name"`
	Match    RouteMatch `json:"match"`
	Upstream string     `json:"upstream"`
	Timeout  Duration   `json:"timeout,omitempty"`
	Retries  *Retries   `json:"retries,omitempty"`
	// Roles: any one is required; empty means any authenticated caller.
	Roles []string `json:"roles,omitempty"`
	// Features the tenant must have enabled for this route.
	Features          []string           `json:"features,omitempty"`
	RequestValidation *RequestValidation `json:"requestValidation,omitempty"`
	ResponseHeaders   *HeaderMutation    `json:"responseHeaders,omitempty"`
	RequestHeaders    *HeaderMutation    `json:"requestHeaders,omitempty"`
	// RateLimit overrides the tenant's limits for this route.
	RateLimit *RateLimits `json:"rateLimit,omitempty"`
}

// RouteMatch selects requests for a route. Exactly one of PathPrefix and Path.
type RouteMatch struct {
	PathPrefix string   `json:"pathPrefix,omitempty"`
	Path       string   `json:"path,omitempty"`
	Methods    []string `json:"methods,omitempty"`
}

// Retries is a retry policy.
type Retries struct {
	Attempts int `json:"attempts"`
	// On lists Envoy retry_on conditions: 5xx, gateway-error, reset,
	// connect-failure, retriable-4xx, refused-stream.
	On            []string `json:"on,omitempty"`
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
}

// RequestValidation checks request bodies in ext_authz.
type RequestValidation struct {
	// BodySchema is a JSON Schema (draft 2020-12 subset) the JSON body must match.
	BodySchema json.RawMessage `json:"bodySchema,omitempty"`
	// MaxBodyBytes bounds the body Envoy buffers for validation (default 8192).
	MaxBodyBytes int `json:"maxBodyBytes,omitempty"`
}

// HeaderMutation sets (overwrites) and removes headers.
type HeaderMutation struct {
	Set    map[string]string `json:"set,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// Upstream is a tenant service.
type Upstream struct {
	Name             string            `json:"name"`
	Endpoints        []Endpoint        `json:"endpoints"`
	LBPolicy         LBPolicy          `json:"lbPolicy,omitempty"`
	ConnectTimeout   Duration          `json:"connectTimeout,omitempty"`
	Protocol         Protocol          `json:"protocol,omitempty"`
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	CircuitBreaker   *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// Endpoint is one address of an upstream.
type Endpoint struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
	Weight  int    `json:"weight,omitempty"`
}

// LBPolicy is a load balancing policy.
type LBPolicy string

// Load balancing policies, as Envoy names them.
const (
	LBRoundRobin   LBPolicy = "round_robin"
	LBLeastRequest LBPolicy = "least_request"
	LBRandom       LBPolicy = "random"
	LBRingHash     LBPolicy = "ring_hash"
	LBMaglev       LBPolicy = "maglev"
)

// Protocol is the upstream application protocol.
type Protocol string

// Upstream protocols.
const (
	ProtocolHTTP1 Protocol = "http1"
	ProtocolHTTP2 Protocol = "http2"
	ProtocolGRPC  Protocol = "grpc"
)

// HealthCheck is an active health check: exactly one of http, tcp and grpc.
//
// On an upstream with protocol grpc, http is translated as the gRPC health
// check of the whole server (host becomes the :authority; path is not
// used, the gRPC health protocol has one fixed method): a gRPC server
// answers a plain HTTP request 415, so an HTTP check could never pass.
type HealthCheck struct {
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	TCP  bool             `json:"tcp,omitempty"`
	// GRPC probes grpc.health.v1.Health/Check; protocol grpc only.
	GRPC               *GRPCHealthCheck `json:"grpc,omitempty"`
	Interval           Duration         `json:"interval,omitempty"`
	Timeout            Duration         `json:"timeout,omitempty"`
	UnhealthyThreshold int              `json:"unhealthyThreshold,omitempty"`
	HealthyThreshold   int              `json:"healthyThreshold,omitempty"`
}

// HTTPHealthCheck probes an HTTP path.
type HTTPHealthCheck struct {
	Path string `json:"path"`
	Host string `json:"host,omitempty"`
}

// GRPCHealthCheck asks the upstream's grpc.health.v1 Health service.
type GRPCHealthCheck struct {
	// Service is the HealthCheckRequest's service; empty asks about the
	// server as a whole.
	Service string `json:"service,omitempty"`
}

// CircuitBreaker are Envoy cluster circuit-breaker thresholds.
type CircuitBreaker struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
	MaxRetries         int `json:"maxRetries,omitempty"`
}

// OutlierDetection ejects misbehaving endpoints.
type OutlierDetection struct {
	Consecutive5xx     int      `json:"consecutive5xx,omitempty"`
	Interval           Duration `json:"interval,omitempty"`
	BaseEjectionTime   Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent int      `json:"maxEjectionPercent,omitempty"`
}

// RateLimits combine a per-Envoy token bucket (APISIX limit-req) with
// global quotas across every Envoy (APISIX limit-count).
type RateLimits struct {
	Local  *LocalRateLimit   `json:"local,omitempty"`
	Global []GlobalRateLimit `json:"global,omitempty"`
}

// Unit is a rate limit time unit.
type Unit string

// Rate limit units, as envoyproxy/ratelimit names them (lower case).
const (
	UnitSecond Unit = "second"
	UnitMinute Unit = "minute"
	UnitHour   Unit = "hour"
	UnitDay    Unit = "day"
)

// Duration returns the length of one unit.
func (u Unit) Duration() time.Duration {
	switch u {
	case UnitSecond:
		return time.Second
	case UnitMinute:
		return time.Minute
	case UnitHour:
		return time.Hour
	case UnitDay:
		return 24 * time.Hour
	}
	return 0
}

// LocalRateLimit is a token bucket per Envoy instance: Requests tokens
// refilled every Per, plus Burst extra capacity.
type LocalRateLimit struct {
	Requests int  `json:"requests"`
	Per      Unit `json:"per"`
	Burst    int  `json:"burst,omitempty"`
}

// GlobalRateLimit is a quota counted across the fleet.
type GlobalRateLimit struct {
	Requests int  `json:"requests"`
	Per      Unit `json:"per"`
}

// ErrorsSpec customises error bodies.
type ErrorsSpec struct {
	// Locale of error messages: en, de or fr.
	Locale string `json:"locale,omitempty"`
}

// Isolation describes per-tenant Kubernetes isolation objects (optional).
type Isolation struct {
	Namespace      string            `json:"namespace,omitempty"`
	Quota          map[string]string `json:"quota,omitempty"`
	DedicatedNodes map[string]string `json:"dedicatedNodes,omitempty"`
	// LimitRange are the container defaults of the namespace (optional):
	// with a cpu or memory quota Kubernetes rejects pods without requests,
	// so `tenantmesh k8s render` falls back to small defaults when unset.
	LimitRange *IsolationLimits `json:"limitRange,omitempty"`
}

// IsolationLimits are LimitRange values per container, by resource (cpu,
// memory, ephemeral-storage), as Kubernetes quantities.
type IsolationLimits struct {
	// DefaultRequest is requested by a container that requests nothing.
	DefaultRequest map[string]string `json:"defaultRequest,omitempty"`
	// Default is the limit of a container that sets none.
	Default map[string]string `json:"default,omitempty"`
	// Max is the largest limit a container may set.
	Max map[string]string `json:"max,omitempty"`
}

// GetTypeMeta implements Object.
func (t *Tenant) GetTypeMeta() *TypeMeta { return &t.TypeMeta }

// GetMeta implements Object.
func (t *Tenant) GetMeta() *ObjectMeta { return &t.Metadata }

// ID returns the tenant id.
func (t *Tenant) ID() string { return t.Metadata.Name }

// Active reports whether the tenant may serve traffic.
func (t *Tenant) Active() bool { return t.Spec.Status != StatusSuspended }

// Route returns the named route.
func (t *Tenant) Route(name string) (*Route, bool) {
	for i := range t.Spec.Routes {
		if t.Spec.Routes[i].Name == name {
			return &t.Spec.Routes[i], true
		}
	}
	return nil, false
}

// Upstream returns the named upstream.
func (t *Tenant) Upstream(name string) (*Upstream, bool) {
	for i := range t.Spec.Upstreams {
		if t.Spec.Upstreams[i].Name == name {
			return &t.Spec.Upstreams[i], true
		}
	}
	return nil, false
}

// HasFeature reports whether the tenant has a feature enabled.
func (t *Tenant) HasFeature(f string) bool {
	for _, x := range t.Spec.Features {
		if x == f {
			return true
		}
	}
	return false
}

// Tier gives defaults to the tenants that name it.
type Tier struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     TierSpec   `json:"spec"`
}

// TierSpec holds a tier's defaults.
type TierSpec struct {
	RateLimits            *RateLimits `json:"rateLimits,omitempty"`
	MaxConcurrentRequests int         `json:"maxConcurrentRequests,omitempty"`
	// Priority is the Envoy routing priority of the tier's routes: default or high.
	Priority Priority `json:"priority,omitempty"`
}

// Priority is an Envoy routing priority.
type Priority string

// Routing priorities.
const (
	PriorityDefault Priority = "default"
	PriorityHigh    Priority = "high"
)

// GetTypeMeta implements Object.
func (t *Tier) GetTypeMeta() *TypeMeta { return &t.TypeMeta }

// GetMeta implements Object.
func (t *Tier) GetMeta() *ObjectMeta { return &t.Metadata }

// MeshConfig is the singleton (name "default") of fleet-wide settings.
type MeshConfig struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     MeshConfigSpec `json:"spec"`
	// resolved is attached by DefaultedMeshConfig (resolved.go).
	resolved *ResolvedMesh
}

// MeshConfigSpec holds fleet-wide settings.
type MeshConfigSpec struct {
	// EdgePort is the port of listener edge-http (default 10000).
	EdgePort int `json:"edgePort,omitempty"`
	// SidecarInboundPort / SidecarOutboundPort (defaults 15006 / 15001).
	SidecarInboundPort  int `json:"sidecarInboundPort,omitempty"`
	SidecarOutboundPort int `json:"sidecarOutboundPort,omitempty"`
	// JWT lists platform issuers; they may vouch for any tenant.
	JWT       []JWTIssuer       `json:"jwt,omitempty"`
	Authz     AuthzSettings     `json:"authz,omitempty"`
	RateLimit RateLimitSettings `json:"rateLimit,omitempty"`
	// ControlPlaneAdmin is host:port of the admin server that publishes the
	// JWKS of x-tenant-context (sidecars fetch it). Default 127.0.0.1:9102.
	ControlPlaneAdmin string `json:"controlPlaneAdmin,omitempty"`
	// ControlPlaneAdminTLS makes sidecars fetch that JWKS over TLS and
	// verify the admin server's certificate (serve --admin-tls-cert).
	// Unset: plain HTTP, which only loopback or development setups should
	// use: whoever can answer in its place can mint x-tenant-context.
	ControlPlaneAdminTLS *AdminTLS `json:"controlPlaneAdminTLS,omitempty"`

	// Reserved names (validate_reserved.go, README "Platform hosts").

	// PlatformHosts are the hosts on which the platform itself serves the
	// path form (/tenants/<id>/…) and the shared services (/shared/…). No
	// tenant may claim one in spec.hosts: a tenant's host takes every
	// path on that host.
	PlatformHosts []string `json:"platformHosts,omitempty"`
}

// AuthzSettings locate the ext_authz service.
type AuthzSettings struct {
	Address string   `json:"address,omitempty"` // default 127.0.0.1:9191
	Timeout Duration `json:"timeout,omitempty"` // default 250ms
	// TLS makes the edges call ext_authz over (mutual) TLS (serve
	// --authz-tls-*). Unset: plaintext, which serve allows on loopback
	// only (or with --authz-insecure-plaintext).
	TLS *ServiceTLS `json:"tls,omitempty"`
}

// RateLimitSettings locate envoyproxy/ratelimit.
type RateLimitSettings struct {
	Address string   `json:"address,omitempty"` // default 127.0.0.1:8081
	Timeout Duration `json:"timeout,omitempty"` // default 100ms
	// FailureModeDeny denies requests when the limiter is unreachable. The
	// default (false) lets traffic through so an outage of the limiter does
	// not take down every tenant.
	FailureModeDeny bool `json:"failureModeDeny,omitempty"`
	// TLS makes the edges call the limiter over (mutual) TLS (its
	// GRPC_SERVER_USE_TLS). Unset: plaintext.
	TLS *ServiceTLS `json:"tls,omitempty"`
}

// GetTypeMeta implements Object.
func (m *MeshConfig) GetTypeMeta() *TypeMeta { return &m.TypeMeta }

// GetMeta implements Object.
func (m *MeshConfig) GetMeta() *ObjectMeta { return &m.Metadata }

// APIKey is the stored record of an API key; never the key itself.
type APIKey struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name,omitempty"`
	// Hash is hex(SHA-256(secret part of the key)).
	Hash      string     `json:"hash"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Revoked   bool       `json:"revoked,omitempty"`
}

// Usable reports whether the key may authenticate at time now.
func (k *APIKey) Usable(now time.Time) bool {
	return !k.Revoked && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}
