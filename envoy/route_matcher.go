package envoy

import (
	"fmt"
	"sort"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
)

// RouteListAction is a virtual host match-tree action: the routes are then
// matched in order, with their own full match criteria (path rewrites
// follow the chosen route's match, not the tree's prefix).
func RouteListAction(name string, routes []*routev3.Route) (*xdscorev3.TypedExtensionConfig, error) {
	return xdsAction(name, &routev3.RouteList{Routes: routes})
}

// RouteAction is a match-tree action selecting one route.
func RouteAction(r *routev3.Route) (*xdscorev3.TypedExtensionConfig, error) {
	return xdsAction(r.GetName(), r)
}

func xdsAction(name string, m proto.Message) (*xdscorev3.TypedExtensionConfig, error) {
	a, err := Any(m)
	if err != nil {
		return nil, fmt.Errorf("match action %s: %w", name, err)
	}
	return &xdscorev3.TypedExtensionConfig{Name: name, TypedConfig: a}, nil
}

// PathPrefixTree is a virtual host match tree on :path: the action of the
// longest key that prefixes the path, else onNoMatch. Envoy resolves it
// with a trie instead of trying every route in order, which is what keeps
// a virtual host with thousands of tenants' routes cheap per request.
func PathPrefixTree(byPrefix map[string]*xdscorev3.TypedExtensionConfig, onNoMatch *xdscorev3.TypedExtensionConfig) (*xdsmatcherv3.Matcher, error) {
	input, err := Any(&matcherv3.HttpRequestHeaderMatchInput{HeaderName: ":path"})
	if err != nil {
		return nil, fmt.Errorf("path match input: %w", err)
	}
	m := make(map[string]*xdsmatcherv3.Matcher_OnMatch, len(byPrefix))
	for k, a := range byPrefix {
		m[k] = &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: a}}
	}
	return &xdsmatcherv3.Matcher{
		MatcherType: &xdsmatcherv3.Matcher_MatcherTree_{MatcherTree: &xdsmatcherv3.Matcher_MatcherTree{
			Input:    &xdscorev3.TypedExtensionConfig{Name: "request-headers", TypedConfig: input},
			TreeType: &xdsmatcherv3.Matcher_MatcherTree_PrefixMatchMap{PrefixMatchMap: &xdsmatcherv3.Matcher_MatcherTree_MatchMap{Map: m}},
		}},
		OnNoMatch: &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: onNoMatch}},
	}, nil
}

// TreeRoutes returns every route a virtual host can select, from its
// route list or its match tree (decoding the actions), in a stable order.
func TreeRoutes(vh *routev3.VirtualHost) ([]*routev3.Route, error) {
	out := append([]*routev3.Route(nil), vh.GetRoutes()...)
	if vh.GetMatcher() == nil {
		return out, nil
	}
	rs, err := matcherRoutes(vh.GetMatcher())
	if err != nil {
		return nil, fmt.Errorf("virtual host %s: %w", vh.GetName(), err)
	}
	return append(out, rs...), nil
}

// matcherRoutes collects the routes of a matcher tree, descending into
// nested matchers (shared services match on a header below a path prefix).
func matcherRoutes(m *xdsmatcherv3.Matcher) ([]*routev3.Route, error) {
	var onMatches []*xdsmatcherv3.Matcher_OnMatch
	if tree := m.GetMatcherTree(); tree != nil {
		maps := tree.GetPrefixMatchMap().GetMap()
		if len(maps) == 0 {
			maps = tree.GetExactMatchMap().GetMap()
		}
		keys := make([]string, 0, len(maps))
		for k := range maps {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			onMatches = append(onMatches, maps[k])
		}
	}
	if m.GetOnNoMatch() != nil {
		onMatches = append(onMatches, m.GetOnNoMatch())
	}
	var out []*routev3.Route
	for _, om := range onMatches {
		var rs []*routev3.Route
		var err error
		if nested := om.GetMatcher(); nested != nil {
			rs, err = matcherRoutes(nested)
		} else {
			rs, err = ActionRoutes(om.GetAction())
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// ActionRoutes decodes a match-tree action (Route or RouteList).
func ActionRoutes(a *xdscorev3.TypedExtensionConfig) ([]*routev3.Route, error) {
	var list routev3.RouteList
	if err := a.GetTypedConfig().UnmarshalTo(&list); err == nil {
		return list.GetRoutes(), nil
	}
	var r routev3.Route
	if err := a.GetTypedConfig().UnmarshalTo(&r); err != nil {
		return nil, fmt.Errorf("action %s: neither Route nor RouteList: %w", a.GetName(), err)
	}
	return []*routev3.Route{&r}, nil
}
