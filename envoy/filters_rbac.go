package envoy

import (
	"fmt"

	rbacconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// Names of the RBAC policies of RBACFilter, as they appear in Envoy's
// per-policy stats and in grpc-go's authorization logs.
const (
	PolicySameTenant = "same-tenant"
	PolicyExempt     = "exempt-paths"
)

// RBACFilter allows a request when principal matches, or when its path
// (without query) is one of exempt; everything else is denied with 403.
// It is an ALLOW list, so a request that carries nothing the principal can
// match — no verified token, another tenant's token — is denied.
func RBACFilter(principal *rbacconfv3.Principal, exempt []string) (*hcmv3.HttpFilter, error) {
	if principal == nil {
		return nil, fmt.Errorf("rbac: a principal is required")
	}
	policies := map[string]*rbacconfv3.Policy{
		PolicySameTenant: {
			Permissions: []*rbacconfv3.Permission{{Rule: &rbacconfv3.Permission_Any{Any: true}}},
			Principals:  []*rbacconfv3.Principal{principal},
		},
	}
	if len(exempt) > 0 {
		var perms []*rbacconfv3.Permission
		for _, p := range exempt {
			perms = append(perms, &rbacconfv3.Permission{Rule: &rbacconfv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
				Rule: &matcherv3.PathMatcher_Path{Path: exact(p)},
			}}})
		}
		policies[PolicyExempt] = &rbacconfv3.Policy{
			Permissions: perms,
			Principals:  []*rbacconfv3.Principal{{Identifier: &rbacconfv3.Principal_Any{Any: true}}},
		}
	}
	return httpFilter(FilterRBAC, &rbacv3.RBAC{
		Rules: &rbacconfv3.RBAC{Action: rbacconfv3.RBAC_ALLOW, Policies: policies},
	})
}

// JWTClaimPrincipal matches a request whose JWT, verified by the jwt_authn
// filter with payload_in_metadata = payloadNamespace, has claim == value.
// It reads dynamic metadata, which only a verified token can put there.
// sourced_metadata (Envoy >= 1.33) replaces the deprecated metadata
// principal; grpc-go does not implement either (see HeaderPrincipal).
func JWTClaimPrincipal(payloadNamespace, claim, value string) *rbacconfv3.Principal {
	return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_SourcedMetadata{SourcedMetadata: &rbacconfv3.SourcedMetadata{
		MetadataMatcher: &matcherv3.MetadataMatcher{
			Filter: JWTAuthnNamespace,
			Path: []*matcherv3.MetadataMatcher_PathSegment{
				{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: payloadNamespace}},
				{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: claim}},
			},
			Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: exact(value)}},
		},
		MetadataSource: rbacconfv3.MetadataSource_DYNAMIC,
	}}}
}

// HeaderPrincipal matches a request whose header name equals value. Only
// for clients that cannot verify a JWT themselves (proxyless gRPC): the
// header must have been set by something the server trusts.
func HeaderPrincipal(name, value string) *rbacconfv3.Principal {
	return &rbacconfv3.Principal{Identifier: &rbacconfv3.Principal_Header{Header: &routev3.HeaderMatcher{
		Name:                 name,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(value)},
	}}}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

// sidecarReplies render the denials of jwt_authn (401 missing or invalid
// token, 403 wrong audience: jwt_authn/filter.cc, onComplete) and RBAC
// (403: rbac_filter.cc, decodeHeaders) as the JSON error document, ahead
// of the generic mappers of LocalReplyConfig. Both are selected by status:
// RBAC sets no response flag, and "RBAC" is not one Envoy knows (the `in:`
// rule on ResponseFlagFilter.flags, api/envoy/config/accesslog/v3/
// accesslog.proto), so a flag filter on it got the listener NACKed.
// Unlike at the edge, nothing upstream of these filters produces its own
// JSON body, so selecting by status is safe here.
var sidecarReplies = []localReply{
	{status(401), "invalid_tenant_context", "a valid x-tenant-context is required"},
	{status(403), "cross_tenant", "this service belongs to another tenant"},
}

// SidecarLocalReplyConfig is LocalReplyConfig plus the sidecar's denials.
func SidecarLocalReplyConfig() (*hcmv3.LocalReplyConfig, error) {
	return localReplyConfig(append(append([]localReply(nil), sidecarReplies...), localReplies...))
}
