package envoy

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/structpb"
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

func and(f ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
		AndFilter: &accesslogv3.AndFilter{Filters: f},
	}}
}

// localReplies select Envoy's own replies by response flag. There is
// deliberately no catch-all: ext_authz denials are local replies too
// (flag UAEX) and already carry the authz service's localized JSON body,
// which a blanket body_format would overwrite. Only an authz *failure*
// (UAEX with 503, from status_on_error; authz itself never denies with 503)
// is rewritten.
//
// A mapper sees the flags set *before* sendLocalReply. The router and
// ext_authz set theirs first; the local and global rate limit filters set
// RL after their 429, so 429s are selected by status instead (authz never
// answers 429).
var localReplies = []localReply{
	{status(429), "rate_limited", "too many requests"},
	{flags("NR"), "not_found", "no route matches this request"},
	{and(flags("UAEX"), status(503)), "authz_unavailable", "the authorization service is unavailable"},
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
