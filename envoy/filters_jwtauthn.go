package envoy

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// JWTAuthnNamespace is the dynamic metadata namespace jwt_authn writes a
// verified payload into (payload_in_metadata): always this name, whatever
// the filter is called (Filter::setExtractedData,
// source/extensions/filters/http/jwt_authn/filter.cc).
const JWTAuthnNamespace = "envoy.filters.http.jwt_authn"

// JWTAuthnOptions describe a jwt_authn filter with one provider that
// verifies a token carried, without prefix, in one request header.
type JWTAuthnOptions struct {
	// Provider names the provider; it is only used inside the filter.
	Provider string
	// Issuer and Audiences the token must carry (iss, aud).
	Issuer    string
	Audiences []string
	// Header holds the compact JWS (no "Bearer " prefix).
	Header string
	// JWKSURI is fetched through JWKSCluster; CacheDuration bounds how long
	// a fetched key set is used before it is fetched again.
	JWKSURI       string
	JWKSCluster   string
	JWKSTimeout   time.Duration
	CacheDuration time.Duration
	// PayloadNamespace is the key under the filter's dynamic metadata
	// namespace (envoy.filters.http.jwt_authn) where the verified claims
	// are stored, for RBAC to match on.
	PayloadNamespace string
	// Exempt paths (exact, without query) need no token at all.
	Exempt []string
}

// JWTAuthnFilter builds the filter. Requests on an Exempt path pass
// without a token; every other request needs a valid token of the
// provider: a missing or invalid one is answered 401, a valid one with
// the wrong audience 403 — before the request reaches any later filter.
//
// The key set is fetched on the main thread when the listener is created
// (async_fetch), not by the first request on every worker, and a fetch
// failure is retried soon rather than after cache_duration. The token
// header is forwarded: the application must propagate it to the services
// it calls, whose sidecars verify it again.
func JWTAuthnFilter(o JWTAuthnOptions) (*hcmv3.HttpFilter, error) {
	if o.Provider == "" || o.Header == "" || o.JWKSURI == "" || o.JWKSCluster == "" {
		return nil, fmt.Errorf("jwt_authn: provider, header, JWKS URI and cluster are required")
	}
	if o.JWKSTimeout <= 0 {
		// http_uri.timeout is required by Envoy.
		o.JWKSTimeout = DefaultJWKSTimeout
	}
	provider := &jwtauthnv3.JwtProvider{
		Issuer:            o.Issuer,
		Audiences:         o.Audiences,
		RequireExpiration: true,
		Forward:           true,
		FromHeaders:       []*jwtauthnv3.JwtHeader{{Name: o.Header}},
		PayloadInMetadata: o.PayloadNamespace,
		JwksSourceSpecifier: &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtauthnv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{
				Uri:              o.JWKSURI,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: o.JWKSCluster},
				Timeout:          Duration(o.JWKSTimeout),
			},
			CacheDuration: Duration(o.CacheDuration),
			AsyncFetch:    &jwtauthnv3.JwksAsyncFetch{FailedRefetchDuration: Duration(JWKSFailedRefetch)},
		}},
	}
	var rules []*jwtauthnv3.RequirementRule
	for _, p := range o.Exempt {
		// A rule without a requirement: matching requests skip verification.
		rules = append(rules, &jwtauthnv3.RequirementRule{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: p}},
		})
	}
	rules = append(rules, &jwtauthnv3.RequirementRule{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		RequirementType: &jwtauthnv3.RequirementRule_Requires{Requires: &jwtauthnv3.JwtRequirement{
			RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: o.Provider},
		}},
	})
	return httpFilter(FilterJWTAuthn, &jwtauthnv3.JwtAuthentication{
		Providers: map[string]*jwtauthnv3.JwtProvider{o.Provider: provider},
		Rules:     rules,
	})
}

// JWKSFailedRefetch is how soon a key set fetch that failed is retried;
// DefaultJWKSTimeout bounds one fetch when the options leave it unset.
const (
	JWKSFailedRefetch  = 2 * time.Second
	DefaultJWKSTimeout = time.Second
)
