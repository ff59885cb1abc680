package validate

import (
	"strings"
	"testing"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// hcm is a valid connection manager: RDS edge-routes, router last.
func hcm(t *testing.T) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "edge",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "edge-routes",
			ConfigSource:    adsSource(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
}

func listenerWith(t *testing.T, h *hcmv3.HttpConnectionManager) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:    "l",
		Address: socket("0.0.0.0", 8080),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)},
		}}}},
	}
}

// The sidecar defect: a response flag outside the proto's list, two Anys
// down (listener → HCM → local reply mapper). ValidateAll on the listener
// does not see it; Deep must.
func TestDeepDescendsIntoAny(t *testing.T) {
	h := hcm(t)
	h.LocalReplyConfig = &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
			ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"RBAC"}},
		}},
	}}}
	l := listenerWith(t, h)
	if err := l.ValidateAll(); err != nil {
		t.Fatalf("the listener's own ValidateAll should not see inside the Any, got %v", err)
	}
	err := Deep(l)
	if err == nil || !strings.Contains(err.Error(), "ResponseFlagFilter.Flags[0]") || !strings.Contains(err.Error(), "filter_chains[0].filters[0].typed_config<HttpConnectionManager>") {
		t.Fatalf("Deep = %v, want the flag error with its path", err)
	}
	if err := Deep(listenerWith(t, hcm(t))); err != nil {
		t.Fatalf("valid listener: %v", err)
	}
}

// A route two Anys deep in a virtual host's match tree (tree action →
// RouteList → Route) that misses its action.
func TestDeepDescendsIntoMatchTree(t *testing.T) {
	bad := &routev3.Route{Name: "no-action", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}}
	vh := treeVhost(t, mustAny(t, &routev3.RouteList{Routes: []*routev3.Route{bad}}))
	err := Deep(vh)
	if err == nil || !strings.Contains(err.Error(), "Route.Action") {
		t.Fatalf("Deep = %v, want the route's missing action", err)
	}
}

func treeVhost(t *testing.T, action *anypb.Any) *routev3.VirtualHost {
	return &routev3.VirtualHost{
		Name:    "vh",
		Domains: []string{"a.example.com"},
		Matcher: &xdsmatcherv3.Matcher{
			MatcherType: &xdsmatcherv3.Matcher_MatcherTree_{MatcherTree: &xdsmatcherv3.Matcher_MatcherTree{
				Input: &xdscorev3.TypedExtensionConfig{Name: "path", TypedConfig: mustAny(t, &matcherv3.HttpRequestHeaderMatchInput{HeaderName: ":path"})},
				TreeType: &xdsmatcherv3.Matcher_MatcherTree_PrefixMatchMap{PrefixMatchMap: &xdsmatcherv3.Matcher_MatcherTree_MatchMap{
					Map: map[string]*xdsmatcherv3.Matcher_OnMatch{"/": {OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: &xdscorev3.TypedExtensionConfig{Name: "a", TypedConfig: action}}}},
				}},
			}},
		},
	}
}

func TestDeepRefusesWhatItCannotCheck(t *testing.T) {
	for name, a := range map[string]*anypb.Any{
		"unknown type": {TypeUrl: "type.googleapis.com/example.Unknown", Value: []byte{}},
		"undecodable":  {TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", Value: []byte{0xff, 0xff}},
		"typed struct": mustAny(t, &xdstypev3.TypedStruct{TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}),
	} {
		t.Run(name, func(t *testing.T) {
			h := hcm(t)
			h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "x", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}}, h.HttpFilters...)
			if err := Deep(listenerWith(t, h)); err == nil {
				t.Fatal("Deep accepted an Any it cannot check")
			}
		})
	}
}
