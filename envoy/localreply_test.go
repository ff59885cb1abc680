package envoy

import (
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// reply is what a local reply mapper's filter can see of a local reply:
// the status, the response flags set before sendLocalReply, and the
// stream's dynamic metadata by namespace.
type reply struct {
	status   uint32
	flags    []string
	metadata map[string]*structpb.Struct
}

// evalFilter emulates Envoy's access log filters
// (source/common/access_log/access_log_impl.cc, the evaluate() of
// StatusCodeFilter, ResponseFlagFilter, AndFilter, OrFilter and
// MetadataFilter) for the kinds the generated configuration uses; any
// other kind fails the test rather than being guessed.
func evalFilter(t *testing.T, f *accesslogv3.AccessLogFilter, r reply) bool {
	t.Helper()
	switch {
	case f.GetStatusCodeFilter() != nil:
		c := f.GetStatusCodeFilter().GetComparison()
		v := c.GetValue().GetDefaultValue()
		switch c.GetOp() {
		case accesslogv3.ComparisonFilter_EQ:
			return r.status == v
		case accesslogv3.ComparisonFilter_GE:
			return r.status >= v
		case accesslogv3.ComparisonFilter_LE:
			return r.status <= v
		}
	case f.GetResponseFlagFilter() != nil:
		want := f.GetResponseFlagFilter().GetFlags()
		if len(want) == 0 { // no flags listed: any flag set matches
			return len(r.flags) > 0
		}
		for _, w := range want {
			for _, g := range r.flags {
				if w == g {
					return true
				}
			}
		}
		return false
	case f.GetAndFilter() != nil:
		for _, sub := range f.GetAndFilter().GetFilters() {
			if !evalFilter(t, sub, r) {
				return false
			}
		}
		return true
	case f.GetOrFilter() != nil:
		for _, sub := range f.GetOrFilter().GetFilters() {
			if evalFilter(t, sub, r) {
				return true
			}
		}
		return false
	case f.GetMetadataFilter() != nil:
		return evalMetadataFilter(t, f.GetMetadataFilter(), r)
	}
	t.Fatalf("filter %v: not emulated", f)
	return false
}

// evalMetadataFilter is MetadataFilter::evaluate: a present (primitive)
// value decides by the matcher's value matcher — MetadataMatcher.invert is
// not consulted there —, an absent one by match_if_key_not_found
// (default true).
func evalMetadataFilter(t *testing.T, f *accesslogv3.MetadataFilter, r reply) bool {
	t.Helper()
	m := f.GetMatcher()
	var v *structpb.Value
	if s := r.metadata[m.GetFilter()]; s != nil {
		v = structpb.NewStructValue(s)
		for _, seg := range m.GetPath() {
			v = v.GetStructValue().GetFields()[seg.GetKey()]
		}
	}
	present := v != nil && v.GetKind() != nil
	if !present {
		return f.GetMatchIfKeyNotFound() == nil || f.GetMatchIfKeyNotFound().GetValue()
	}
	switch p := m.GetValue().GetMatchPattern().(type) {
	case *matcherv3.ValueMatcher_PresentMatch:
		// PresentMatcher::match: true only when configured true and set.
		return p.PresentMatch
	case *matcherv3.ValueMatcher_StringMatch:
		if e, ok := p.StringMatch.GetMatchPattern().(*matcherv3.StringMatcher_Exact); ok {
			return v.GetStringValue() == e.Exact
		}
	}
	t.Fatalf("metadata value matcher %v: not emulated", m.GetValue())
	return false
}

// mapped is the error code of the body the first matching mapper writes
// (Envoy applies the first match: source/common/local_reply/local_reply.cc,
// LocalReplyImpl::rewrite), or "" when no mapper matches and the reply
// keeps its own body.
func mapped(t *testing.T, cfg *hcmv3.LocalReplyConfig, r reply) string {
	t.Helper()
	for _, m := range cfg.GetMappers() {
		if evalFilter(t, m.GetFilter(), r) {
			return m.GetBodyFormatOverride().GetJsonFormat().GetFields()["error"].GetStructValue().GetFields()["code"].GetStringValue()
		}
	}
	return ""
}

// TestLocalReplyMappersPassValidation: every mapper must pass Envoy's
// protoc-gen-validate rules, or the listener carrying it is NACKed
// (ResponseFlagFilter.flags has an `in:` list in
// api/envoy/config/accesslog/v3/accesslog.proto).
func TestLocalReplyMappersPassValidation(t *testing.T) {
	for name, build := range map[string]func() (*hcmv3.LocalReplyConfig, error){
		"edge": LocalReplyConfig, "sidecar": SidecarLocalReplyConfig,
	} {
		cfg, err := build()
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range cfg.GetMappers() {
			if err := m.ValidateAll(); err != nil {
				t.Errorf("%s mapper %d: %v", name, i, err)
			}
		}
		if err := cfg.ValidateAll(); err != nil {
			t.Errorf("%s local reply config: %v", name, err)
		}
	}
}

// TestSidecarDenialBodies: jwt_authn answers a missing or invalid token
// 401 and a token for another audience 403
// (source/extensions/filters/http/jwt_authn/filter.cc, onComplete), RBAC
// answers 403 without a response flag (rbac_filter.cc, decodeHeaders:
// sendLocalReply with details rbac_access_denied_matched_policy[…]).
// Both 403s are the cross-tenant error; neither is left with Envoy's
// plain-text body.
func TestSidecarDenialBodies(t *testing.T) {
	cfg, err := SidecarLocalReplyConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    reply
		want string
	}{
		{"jwt_authn missing token", reply{status: 401}, "invalid_tenant_context"},
		{"jwt_authn wrong audience", reply{status: 403}, "cross_tenant"},
		{"rbac denial", reply{status: 403}, "cross_tenant"},
		{"no route", reply{status: 404, flags: []string{"NR"}}, "not_found"},
	} {
		if got := mapped(t, cfg, c.r); got != c.want {
			t.Errorf("%s: body %q, want %q", c.name, got, c.want)
		}
	}
}

// TestEdgeAuthzUnavailableOnlyOnFailure: on the edge's generated HCM,
// ext_authz's own failure (status_on_error 503, flag UAEX, no
// CheckResponse so no dynamic metadata: ext_authz.cc, onComplete, case
// Error) gets the authz_unavailable body, while the authz service's own
// 503 denial (not_ready, also flag UAEX, carrying ExtAuthzDenialKey in
// ext_authz's metadata) keeps its own localized body like every other
// denial.
func TestEdgeAuthzUnavailableOnlyOnFailure(t *testing.T) {
	hcm, err := EdgeHTTPConnectionManager(HTTPListenerOptions{Name: "edge-http", RouteConfig: "edge-routes"})
	if err != nil {
		t.Fatal(err)
	}
	if err := hcm.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	cfg := hcm.GetLocalReplyConfig()
	denial := func(reason string) map[string]*structpb.Struct {
		return map[string]*structpb.Struct{FilterExtAuthz: {Fields: map[string]*structpb.Value{
			ExtAuthzDenialKey: structpb.NewStringValue(reason),
		}}}
	}
	uaex := []string{"UAEX"}
	for _, c := range []struct {
		name string
		r    reply
		want string
	}{
		{"ext_authz failure", reply{status: 503, flags: uaex}, "authz_unavailable"},
		{"authz not_ready denial", reply{status: 503, flags: uaex, metadata: denial("not_ready")}, ""},
		{"authz 401 denial", reply{status: 401, flags: uaex, metadata: denial("invalid_token")}, ""},
		{"authz 403 denial", reply{status: 403, flags: uaex, metadata: denial("forbidden")}, ""},
		{"other filter's metadata only", reply{status: 503, flags: uaex, metadata: map[string]*structpb.Struct{
			"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{ExtAuthzDenialKey: structpb.NewStringValue("x")}},
		}}, "authz_unavailable"},
		{"upstream down", reply{status: 503, flags: []string{"UH"}}, "upstream_unavailable"},
		{"rate limited", reply{status: 429, flags: []string{"RL"}}, "rate_limited"},
	} {
		if got := mapped(t, cfg, c.r); got != c.want {
			t.Errorf("%s: body %q, want %q", c.name, got, c.want)
		}
	}
}
