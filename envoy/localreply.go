package envoy

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tenantmesh/tenantmesh/contract"
)

// ErrorBody is the JSON error document every tenantmesh error uses:
// {"error":{"code":"…","message":"…"}} (the same shape ext_authz denies with).
func ErrorBody(code, message string) string {
	// code and message are constants of this package or route names; quote
	// them properly anyway.
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, message)
}

// localReply is one rewrite of an Envoy-generated reply.
type localReply struct {
	filter  *accesslogv3.AccessLogFilter
	code    string
	message string
}

func flags(f ...string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
		ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: f},
	}}
}

func status(code uint32) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
		StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
			Op:    accesslogv3.ComparisonFilter_EQ,
			Value: &corev3.RuntimeUInt32{DefaultValue: code, RuntimeKey: "tenantmesh.local_reply.status"},
		}},
	}}
}

// ExtAuthzDenialKey is the key, in ext_authz's dynamic metadata namespace,
// under which the authz service puts the reason of every denial it
// answers itself.
const ExtAuthzDenialKey = contract.DenialReasonKey

// metadataAbsent matches when dynamic metadata namespace:key is not set.
// MetadataFilter::evaluate (source/common/access_log/access_log_impl.cc)
// takes an absent key to match_if_key_not_found (true here) and judges a
// present one by the value matcher alone; present_match false never
// matches (PresentMatcher::match, source/common/common/matchers.cc), so a
// set key never matches. There is no NOT filter, hence this form.
func metadataAbsent(namespace, key string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_MetadataFilter{
		MetadataFilter: &accesslogv3.MetadataFilter{
			Matcher: &matcherv3.MetadataMatcher{
				Filter: namespace,
				Path:   []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: key}}},
				Value:  &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: false}},
			},
			MatchIfKeyNotFound: wrapperspb.Bool(true),
		},
	}}
}

func and(f ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
		AndFilter: &accesslogv3.AndFilter{Filters: f},
	}}
}

// localReplies select Envoy's own replies by response flag. There is
// deliberately no catch-all: ext_authz denials are local replies too
// (flag UAEX) and already carry the authz service's localized JSON body,
// which a blanket body_format would overwrite. Only an authz *failure* is
// rewritten: ext_authz answers it with status_on_error (503), flag UAEX
// and details ext_authz_error — but authz's own not_ready denial is a 503
// with flag UAEX too (details ext_authz_denied). No built-in access log
// filter reads details (only the optional CEL extension filter could), and
// a header filter reads request headers only. What tells them apart is
// dynamic metadata: ext_authz stores a CheckResponse's dynamic_metadata before it
// acts on the status, for denials as for allows (ext_authz.cc, onComplete;
// enable_dynamic_metadata_ingestion defaults to true), and every authz
// denial carries ExtAuthzDenialKey; a failed or timed-out check has no
// CheckResponse and so no such key.
//
// A mapper sees the flags set *before* sendLocalReply. The router and
// ext_authz set theirs first; the local and global rate limit filters set
// RL after their 429, so 429s are selected by status instead (authz never
// answers 429).
var localReplies = []localReply{
	{status(429), "rate_limited", "too many requests"},
	{flags("NR"), "not_found", "no route matches this request"},
	{and(flags("UAEX"), status(503), metadataAbsent(contract.ExtAuthzNamespace, ExtAuthzDenialKey)), "authz_unavailable", "the authorization service is unavailable"},
	{flags("UT"), "upstream_timeout", "the upstream service did not answer in time"},
	{flags("UH", "UF", "UO", "URX", "UC", "NC", "LH"), "upstream_unavailable", "the upstream service is unavailable"},
	{flags("DPE"), "bad_request", "malformed request"},
}

// LocalReplyConfig renders the replies Envoy generates itself (404, 429,
// 503, 504, …) as the JSON error document.
func LocalReplyConfig() (*hcmv3.LocalReplyConfig, error) {
	return localReplyConfig(localReplies)
}

// localReplyConfig renders mappers in order (Envoy applies the first that
// matches).
func localReplyConfig(replies []localReply) (*hcmv3.LocalReplyConfig, error) {
	cfg := &hcmv3.LocalReplyConfig{}
	for _, r := range replies {
		body, err := structpb.NewStruct(map[string]any{"error": map[string]any{"code": r.code, "message": r.message}})
		if err != nil {
			return nil, fmt.Errorf("local reply %s: %w", r.code, err)
		}
		cfg.Mappers = append(cfg.Mappers, &hcmv3.ResponseMapper{
			Filter: r.filter,
			BodyFormatOverride: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: body},
			},
		})
	}
	return cfg, nil
}
