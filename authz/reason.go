package authz

import (
	"net/http"

	"google.golang.org/grpc/codes"
)

// Reason is the code of a decision. It is the "code" of a denial's JSON
// body, the value of the x-tenantmesh-reason header and the reason label
// of tenantmesh_authz_decisions_total, so the set is closed and small.
type Reason string

// Decision reasons.
const (
	ReasonOK Reason = "ok"

	// 401: the caller is not (or not validly) authenticated.
	ReasonMissingCredentials Reason = "missing_credentials"
	ReasonInvalidToken       Reason = "invalid_token"
	ReasonTokenExpired       Reason = "token_expired"
	ReasonTokenNotYetValid   Reason = "token_not_yet_valid"
	ReasonUntrustedIssuer    Reason = "untrusted_issuer"
	ReasonInvalidAudience    Reason = "invalid_audience"
	ReasonAlgNotAllowed      Reason = "algorithm_not_allowed"
	ReasonUnknownKey         Reason = "unknown_key"
	ReasonIssuerUnavailable  Reason = "issuer_unavailable"
	ReasonMissingTenantClaim Reason = "missing_tenant_claim"
	ReasonInvalidAPIKey      Reason = "invalid_api_key"
	ReasonAPIKeyRevoked      Reason = "api_key_revoked"
	ReasonAPIKeyExpired      Reason = "api_key_expired"
	ReasonAPIKeysDisabled    Reason = "api_keys_disabled"
	ReasonUnknownTenant      Reason = "unknown_tenant"

	// 403: authenticated, but not allowed here.
	ReasonIssuerTenantMismatch Reason = "issuer_tenant_mismatch"
	ReasonTenantHeaderMismatch Reason = "tenant_header_mismatch"
	ReasonCrossTenant          Reason = "cross_tenant"
	ReasonTenantSuspended      Reason = "tenant_suspended"
	ReasonMissingRole          Reason = "missing_role"
	ReasonMissingFeature       Reason = "missing_feature"
	ReasonNotTenantRoute       Reason = "not_tenant_route"
	ReasonUnknownRoute         Reason = "unknown_route"

	// 400/413: the request body does not pass the route's validation.
	ReasonBodyNotJSON  Reason = "body_not_json"
	ReasonBodyInvalid  Reason = "body_invalid"
	ReasonBodyTooLarge Reason = "body_too_large"

	// 5xx: our side cannot decide; still a denial.
	ReasonRouteMisconfigured Reason = "route_misconfigured"
	ReasonInternal           Reason = "internal_error"
	ReasonNotReady           Reason = "not_ready"
	// ReasonBodyValidationTimeout: the body could not be validated before
	// the Check's deadline (503, like an authz that did not answer).
	ReasonBodyValidationTimeout Reason = "body_validation_timeout"
)

// HTTPStatus is the status Envoy answers the client with.
func (r Reason) HTTPStatus() int {
	switch r {
	case ReasonOK:
		return http.StatusOK
	case ReasonMissingCredentials, ReasonInvalidToken, ReasonTokenExpired, ReasonTokenNotYetValid,
		ReasonUntrustedIssuer, ReasonInvalidAudience, ReasonAlgNotAllowed, ReasonUnknownKey,
		ReasonIssuerUnavailable, ReasonMissingTenantClaim, ReasonInvalidAPIKey, ReasonAPIKeyRevoked,
		ReasonAPIKeyExpired, ReasonAPIKeysDisabled, ReasonUnknownTenant:
		return http.StatusUnauthorized
	case ReasonBodyNotJSON, ReasonBodyInvalid:
		return http.StatusBadRequest
	case ReasonBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case ReasonRouteMisconfigured, ReasonInternal:
		return http.StatusInternalServerError
	case ReasonNotReady, ReasonBodyValidationTimeout:
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

// grpcCode is the google.rpc status code of the CheckResponse. Envoy only
// looks at OK vs not OK; the code is for humans reading access logs.
func (r Reason) grpcCode() codes.Code {
	switch r.HTTPStatus() {
	case http.StatusOK:
		return codes.OK
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}

// wwwAuthenticate is the challenge of a 401 (RFC 6750 §3): no error
// parameter when the request carried no credentials, invalid_token when
// it carried bad ones.
func (r Reason) wwwAuthenticate() string {
	switch r {
	case ReasonMissingCredentials, ReasonUnknownTenant:
		return `Bearer realm="tenantmesh"`
	}
	return `Bearer realm="tenantmesh", error="invalid_token"`
}
