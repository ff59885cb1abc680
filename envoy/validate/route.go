package validate

import (
	"fmt"
	"strings"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Route-table rules: envoy source/common/router/config_impl.cc
// (RouteMatcher, VirtualHostImpl, RouteEntryImplBase, PerFilterConfigs)
// and source/common/router/vhds.cc.

func init() {
	register(routeConfiguration)
	register(virtualHost)
	register(route)
}

// maxDirectResponseBody is Envoy's default max_direct_response_body_size_bytes
// (DEFAULT_MAX_DIRECT_RESPONSE_BODY_SIZE_BYTES in config_impl.cc); a larger
// inline body is refused by ConfigUtility::parseDirectResponseBody.
const maxDirectResponseBody = 4096

func routeConfiguration(rc *routev3.RouteConfiguration) []error {
	// RouteMatcher: domains unique across every virtual host of the
	// configuration, one "*". VHDS virtual hosts join this check in Set.
	errs := Domains(rc.GetName(), rc.GetVirtualHosts())
	errs = append(errs, headerMutations("", rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove())...)
	errs = append(errs, headerMutations("response_", rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove())...)
	errs = append(errs, perFilterConfigs("typed_per_filter_config", rc.GetTypedPerFilterConfig())...)
	if v := rc.GetVhds(); v != nil {
		// vhds.cc (VhdsSubscription): VHDS is served only over the delta
		// protocol. An ADS source is delta when the node's ADS is
		// (the bootstrap's job); any other source must say DELTA_GRPC.
		if v.GetConfigSource().GetAds() == nil {
			if t := v.GetConfigSource().GetApiConfigSource().GetApiType(); t.String() != "DELTA_GRPC" {
				errs = append(errs, fmt.Errorf("vhds.config_source: VHDS needs the delta protocol (ads, or api_type DELTA_GRPC), not %s", t))
			}
		}
	}
	if n := rc.GetMaxDirectResponseBodySizeBytes(); n != nil && n.GetValue() < maxDirectResponseBody {
		// Our direct responses are sized against the default; a smaller
		// limit is not something this gate can vouch for.
		errs = append(errs, fmt.Errorf("max_direct_response_body_size_bytes: %d is below Envoy's default %d that the routes are checked against", n.GetValue(), maxDirectResponseBody))
	}
	return errs
}

// Domains checks the domains of virtual hosts that share one route
// configuration the way RouteMatcher's constructor does: each domain
// (lower-cased) once across all of them, at most one "*", and a "*" only
// as the first or last character (anywhere else Envoy takes it literally,
// so it can never match what its author meant).
func Domains(routeConfig string, vhosts []*routev3.VirtualHost) []error {
	var errs []error
	seen := map[string]string{}
	for _, vh := range vhosts {
		for i, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			if !wildcardAtEnd(d) {
				errs = append(errs, fmt.Errorf("virtual host %s: domains[%d]: %q: one wildcard at most, and only as the first or last character", vh.GetName(), i, d))
			}
			if owner, dup := seen[d]; dup {
				if d == "*" {
					errs = append(errs, fmt.Errorf("route configuration %s: only a single wildcard domain is permitted (virtual hosts %s and %s)", routeConfig, owner, vh.GetName()))
				} else {
					errs = append(errs, fmt.Errorf("route configuration %s: only unique values for domains are permitted: %q in virtual hosts %s and %s", routeConfig, d, owner, vh.GetName()))
				}
				continue
			}
			seen[d] = vh.GetName()
		}
	}
	return errs
}

func virtualHost(vh *routev3.VirtualHost) []error {
	var errs []error
	if len(vh.GetRoutes()) > 0 && vh.GetMatcher() != nil {
		// VirtualHostImpl: "cannot set both matcher and routes on virtual host".
		errs = append(errs, fmt.Errorf("virtual host %s: cannot set both matcher and routes", vh.GetName()))
	}
	if m := vh.GetMatcher(); m != nil {
		errs = append(errs, routeMatcher("matcher", m)...)
	}
	errs = append(errs, headerMutations("", vh.GetRequestHeadersToAdd(), vh.GetRequestHeadersToRemove())...)
	errs = append(errs, headerMutations("response_", vh.GetResponseHeadersToAdd(), vh.GetResponseHeadersToRemove())...)
	errs = append(errs, perFilterConfigs("typed_per_filter_config", vh.GetTypedPerFilterConfig())...)
	if rp := vh.GetRetryPolicy(); rp != nil {
		errs = append(errs, retryPolicy("retry_policy", rp)...)
	}
	return errs
}

// routeMatcher checks a virtual host's match tree: the route table's
// RouteActionValidationVisitor accepts only request header inputs
// ("Route table can only match on request headers"), and the actions must
// be a Route or a RouteList.
func routeMatcher(path string, m *xdsmatcherv3.Matcher) []error {
	var errs []error
	onMatch := func(p string, om *xdsmatcherv3.Matcher_OnMatch) {
		if om == nil {
			return
		}
		if nested := om.GetMatcher(); nested != nil {
			errs = append(errs, routeMatcher(p+".matcher", nested)...)
			return
		}
		switch a := om.GetAction().GetTypedConfig(); a.GetTypeUrl() {
		case routeType, routeListType:
		default:
			errs = append(errs, fmt.Errorf("%s.action: %q is not a route action", p, a.GetTypeUrl()))
		}
	}
	checkInput := func(p string, a *anypb.Any) {
		if a.GetTypeUrl() != headerInputType {
			errs = append(errs, fmt.Errorf("%s: route table can only match on request headers, saw %s", p, a.GetTypeUrl()))
		}
	}
	if t := m.GetMatcherTree(); t != nil {
		checkInput(path+".matcher_tree.input", t.GetInput().GetTypedConfig())
		var mm map[string]*xdsmatcherv3.Matcher_OnMatch
		if x := t.GetExactMatchMap(); x != nil {
			mm = x.GetMap()
		} else {
			mm = t.GetPrefixMatchMap().GetMap()
		}
		for k, om := range mm {
			onMatch(fmt.Sprintf("%s.matcher_tree.map[%q]", path, k), om)
		}
	}
	if l := m.GetMatcherList(); l != nil {
		for i, fm := range l.GetMatchers() {
			if sp := fm.GetPredicate().GetSinglePredicate(); sp != nil {
				checkInput(fmt.Sprintf("%s.matcher_list.matchers[%d].predicate.single_predicate.input", path, i), sp.GetInput().GetTypedConfig())
			}
			onMatch(fmt.Sprintf("%s.matcher_list.matchers[%d].on_match", path, i), fm.GetOnMatch())
		}
	}
	onMatch(path+".on_no_match", m.GetOnNoMatch())
	return errs
}

func route(r *routev3.Route) []error {
	var errs []error
	name := func(err error) error { return fmt.Errorf("route %s: %w", r.GetName(), err) }
	errs = append(errs, headerMutations("", r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove())...)
	errs = append(errs, headerMutations("response_", r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove())...)
	errs = append(errs, perFilterConfigs("typed_per_filter_config", r.GetTypedPerFilterConfig())...)
	if dr := r.GetDirectResponse(); dr != nil {
		// ConfigUtility::parseDirectResponseBody: "response body size is N
		// bytes; maximum is 4096".
		if n := len(dr.GetBody().GetInlineString()) + len(dr.GetBody().GetInlineBytes()); n > maxDirectResponseBody {
			errs = append(errs, name(fmt.Errorf("direct_response.body: %d bytes; Envoy's maximum is %d", n, maxDirectResponseBody)))
		}
	}
	if a := r.GetRoute(); a != nil {
		// RouteEntryImplBase: "Specify only one of prefix_rewrite,
		// regex_rewrite or path_rewrite_policy".
		n := 0
		for _, set := range []bool{a.GetPrefixRewrite() != "", a.GetRegexRewrite() != nil, a.GetPathRewritePolicy() != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			errs = append(errs, name(fmt.Errorf("route: specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy")))
		}
		if a.GetPrefixRewrite() != "" && r.GetMatch().GetPathMatchPolicy() != nil {
			errs = append(errs, name(fmt.Errorf("route: cannot use prefix_rewrite with a path_match_policy")))
		}
		if wc := a.GetWeightedClusters(); wc != nil {
			// "Sum of weights in the weighted_cluster must be greater than 0."
			var total uint64
			for i, c := range wc.GetClusters() {
				total += uint64(c.GetWeight().GetValue())
				if (c.GetName() == "") == (c.GetClusterHeader() == "") {
					errs = append(errs, name(fmt.Errorf("route.weighted_clusters.clusters[%d]: exactly one of name or cluster_header", i)))
				}
			}
			if total == 0 {
				errs = append(errs, name(fmt.Errorf("route.weighted_clusters: sum of weights must be greater than 0")))
			}
		}
		for i, mp := range a.GetRequestMirrorPolicies() {
			if (mp.GetCluster() == "") == (mp.GetClusterHeader() == "") {
				errs = append(errs, name(fmt.Errorf("route.request_mirror_policies[%d]: exactly one of cluster or cluster_header", i)))
			}
		}
		upgrades := map[string]bool{}
		for i, u := range a.GetUpgradeConfigs() {
			t := strings.ToLower(u.GetUpgradeType())
			if upgrades[t] {
				errs = append(errs, name(fmt.Errorf("route.upgrade_configs[%d]: duplicate upgrade %s", i, u.GetUpgradeType())))
			}
			upgrades[t] = true
			if t != "connect" && u.GetConnectConfig() != nil {
				errs = append(errs, name(fmt.Errorf("route.upgrade_configs[%d]: non-CONNECT upgrade type %s has connect_config", i, u.GetUpgradeType())))
			}
		}
		if rp := a.GetRetryPolicy(); rp != nil {
			for _, err := range retryPolicy("route.retry_policy", rp) {
				errs = append(errs, name(err))
			}
		}
	}
	return errs
}

// retryPolicy: RetryPolicyImpl refuses "retry_policy.max_interval must
// greater than or equal to the base_interval" (both rounded up to 1 ms).
func retryPolicy(path string, rp *routev3.RetryPolicy) []error {
	b := rp.GetRetryBackOff()
	if b == nil || b.GetMaxInterval() == nil {
		return nil
	}
	base, max := b.GetBaseInterval().AsDuration().Milliseconds(), b.GetMaxInterval().AsDuration().Milliseconds()
	if base < 1 {
		base = 1
	}
	if max < 1 {
		max = 1
	}
	if max < base {
		return []error{fmt.Errorf("%s.retry_back_off: max_interval must be greater than or equal to base_interval", path)}
	}
	return nil
}

var (
	routeType       = typeURL(&routev3.Route{})
	routeListType   = typeURL(&routev3.RouteList{})
	headerInputType = typeURL(&matcherv3.HttpRequestHeaderMatchInput{})
)

func typeURL(m proto.Message) string {
	return "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
}

// wildcardAtEnd: Envoy looks for a wildcard only at domain[0] (a suffix
// match) or the last character (a prefix match); any other "*" is a
// literal character, so a domain may hold one, at either end.
func wildcardAtEnd(d string) bool {
	n := strings.Count(d, "*")
	return n == 0 || (n == 1 && (d[0] == '*' || d[len(d)-1] == '*'))
}
