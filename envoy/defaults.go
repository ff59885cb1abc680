package envoy

import "time"

// Well-known Envoy extension names used in filter chains and per-filter
// configuration maps.
const (
	FilterHCM            = "envoy.filters.network.http_connection_manager"
	FilterExtAuthz       = "envoy.filters.http.ext_authz"
	FilterLocalRateLimit = "envoy.filters.http.local_ratelimit"
	FilterRateLimit      = "envoy.filters.http.ratelimit"
	FilterRouter         = "envoy.filters.http.router"
	EarlyHeaderMutation  = "envoy.http.early_header_mutation.header_mutation"
	AccessLoggerStdout   = "envoy.access_loggers.stdout"
	HTTPProtocolOptions  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
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
