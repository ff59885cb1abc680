package envoy

import (
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

// Envoy extension names used in filter chains and per-filter
// configuration maps: go-control-plane's wellknown names where it has
// one (it adds no new ones: Envoy picks an extension by its config's type
// URL, the name is for humans, stats and typed_per_filter_config keys),
// the extension's canonical name otherwise.
const (
	FilterHCM            = wellknown.HTTPConnectionManager
	FilterExtAuthz       = wellknown.HTTPExternalAuthorization
	FilterRateLimit      = wellknown.HTTPRateLimit
	FilterRouter         = wellknown.Router
	FilterRBAC           = wellknown.HTTPRoleBasedAccessControl
	FilterLocalRateLimit = "envoy.filters.http.local_ratelimit"
	FilterJWTAuthn       = "envoy.filters.http.jwt_authn"
	EarlyHeaderMutation  = "envoy.http.early_header_mutation.header_mutation"
	AccessLoggerStdout   = "envoy.access_loggers.stdout"
	HTTPProtocolOptions  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	TransportSocketTLS   = wellknown.TransportSocketTLS
)

// Settings of everything the tenant API does not expose. They live in one
// place so a reviewer sees every implicit choice together. Defaults of
// what the API does expose are applied by tenants (defaults.go), once,
// when the Catalog admits an object; this package builds what it is given.
const (
	// DefaultServiceConnectTimeout is the connect timeout of the clusters of
	// tenantmesh's own gRPC services (ext_authz, ratelimit).
	DefaultServiceConnectTimeout = time.Second

	// RequestHeadersTimeout bounds how long a client may take to send its
	// request headers (slowloris protection at the edge).
	RequestHeadersTimeout = 10 * time.Second
	// StreamIdleTimeout closes streams that send nothing for this long.
	StreamIdleTimeout = 5 * time.Minute

	// UnattributedLocalRequests is the per-Envoy token bucket (requests per
	// second) of traffic that belongs to no tenant route, i.e. the catch-all
	// 404. It keeps scanners from costing more than a bounded amount.
	UnattributedLocalRequests = 1000

	// DNSRefreshRate is how often STRICT_DNS clusters re-resolve.
	DNSRefreshRate = 5 * time.Second
)
