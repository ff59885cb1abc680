package envoy

import (
	"regexp"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// PathMatch matches a path prefix or an exact path (set exactly one).
//
// A prefix that ends in "/" is an Envoy prefix match. One that does not
// ("/api") is a path_separated_prefix match: "/api", "/api/..." and
// "/api?..." but never "/apix" — what a user writing "/api" means, and
// the reason "/tenants/a" can never match "/tenants/ab".
func PathMatch(prefix, path string) *routev3.RouteMatch {
	switch {
	case path != "":
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: path}}
	case prefix == "/" || strings.HasSuffix(prefix, "/"):
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}}
	default:
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: prefix}}
	}
}

// MethodMatcher matches the :method pseudo-header against one method
// (exact) or several (an anchored alternation). nil for no methods.
func MethodMatcher(methods []string) *routev3.HeaderMatcher {
	var sm *matcherv3.StringMatcher
	switch len(methods) {
	case 0:
		return nil
	case 1:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: methods[0]}}
	default:
		quoted := make([]string, len(methods))
		for i, m := range methods {
			quoted[i] = regexp.QuoteMeta(m)
		}
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
			SafeRegex: &matcherv3.RegexMatcher{Regex: "^(" + strings.Join(quoted, "|") + ")$"},
		}}
	}
	return &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
}

// ExactHeaderMatcher matches a request header whose value is exactly value.
func ExactHeaderMatcher(name, value string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value}},
	}}
}

// RetryPolicy retries up to attempts times on the given Envoy retry_on
// conditions; perTry 0 leaves the route timeout as the only bound.
func RetryPolicy(attempts int, on []string, perTry time.Duration) *routev3.RetryPolicy {
	if attempts <= 0 {
		return nil
	}
	return &routev3.RetryPolicy{
		RetryOn:       strings.Join(on, ","),
		NumRetries:    wrapperspb.UInt32(uint32(attempts)),
		PerTryTimeout: Duration(perTry),
	}
}

// HeadersOverwrite turns a header map into overwrite options, sorted by
// name so the output is deterministic.
func HeadersOverwrite(set map[string]string) []*corev3.HeaderValueOption {
	if len(set) == 0 {
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*corev3.HeaderValueOption, len(keys))
	for i, k := range keys {
		// Envoy reads a header value as a substitution format string; a
		// manifest's value is literal text, so every '%' is escaped. A
		// tenant can thus neither break its virtual host ("50%" does not
		// parse) nor read request or proxy data into a header (%REQ(…)%,
		// %UPSTREAM_HOST%, %HOSTNAME%).
		out[i] = HeaderOverwrite(strings.ToLower(k), strings.ReplaceAll(set[k], "%", "%%"))
	}
	return out
}

// LowerAll lower-cases header names (Envoy stores them lower-case).
func LowerAll(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}

// RouteMetadata is filter_metadata[namespace] = fields.
func RouteMetadata(namespace string, fields map[string]string) *corev3.Metadata {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(fields))}
	for k, v := range fields {
		s.Fields[k] = structpb.NewStringValue(v)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{namespace: s}}
}

// JSONDirectResponse answers with a fixed JSON body.
func JSONDirectResponse(status int, body string) *routev3.Route_DirectResponse {
	return &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
		Status: uint32(status),
		Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
	}}
}

// JSONContentType is the content-type response header of JSON bodies.
func JSONContentType() []*corev3.HeaderValueOption {
	return []*corev3.HeaderValueOption{HeaderOverwrite("content-type", "application/json")}
}
