package validate

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func okRoute() *routev3.Route {
	return &routev3.Route{
		Name:   "r",
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}},
	}
}

func vhost(name string, domains []string, routes ...*routev3.Route) *routev3.VirtualHost {
	if len(routes) == 0 {
		routes = []*routev3.Route{okRoute()}
	}
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: routes}
}

func rc(vhs ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "edge-routes", VirtualHosts: vhs}
}

func withRoute(f func(*routev3.Route)) *routev3.VirtualHost {
	r := okRoute()
	f(r)
	return vhost("vh", []string{"a.example.com"}, r)
}

func bucket(max uint32, fill time.Duration) *typev3.TokenBucket {
	return &typev3.TokenBucket{MaxTokens: max, TokensPerFill: wrapperspb.UInt32(max), FillInterval: durationpb.New(fill)}
}

func localRL(descs ...*ratelimitcommonv3.LocalRateLimitDescriptor) *localratelimitv3.LocalRateLimit {
	return &localratelimitv3.LocalRateLimit{StatPrefix: "l", TokenBucket: bucket(10, time.Second), Descriptors: descs}
}

func desc(v string, fill time.Duration) *ratelimitcommonv3.LocalRateLimitDescriptor {
	return &ratelimitcommonv3.LocalRateLimitDescriptor{
		Entries:     []*ratelimitcommonv3.RateLimitDescriptor_Entry{{Key: "k", Value: v}},
		TokenBucket: bucket(5, fill),
	}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
	}
}

func cla(name string, hosts ...string) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for _, h := range hosts {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socket(h, 80)}}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}}
}

// TestResourceRules: each of Envoy's load-time rules refuses a resource that
// breaks it (with a recognisable reason) and accepts its fixed twin.
func TestResourceRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		bad  proto.Message
		good proto.Message
		want string
	}{
		{"duplicate domain", rc(vhost("a", []string{"x.example.com"}), vhost("b", []string{"X.example.com"})),
			rc(vhost("a", []string{"x.example.com"}), vhost("b", []string{"y.example.com"})), "only unique values for domains"},
		{"two catch-alls", rc(vhost("a", []string{"*"}), vhost("b", []string{"*"})),
			rc(vhost("a", []string{"*"}), vhost("b", []string{"*.example.com"})), "single wildcard domain"},
		{"wildcard in the middle", rc(vhost("a", []string{"api.*.example.com"})), rc(vhost("a", []string{"api.example.*"})), "first or last character"},
		{"routes and matcher", func() proto.Message {
			vh := treeVhost(t, mustAny(t, okRoute()))
			vh.Routes = []*routev3.Route{okRoute()}
			return vh
		}(), treeVhost(t, mustAny(t, okRoute())), "cannot set both matcher and routes"},
		{"tree action not a route", treeVhost(t, mustAny(t, &routerv3.Router{})), treeVhost(t, mustAny(t, okRoute())), "not a route action"},
		{"pseudo-header set", withRoute(func(r *routev3.Route) {
			r.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: ":path", Value: "/x"}}}
		}), withRoute(func(r *routev3.Route) {
			r.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-path", Value: "/x"}}}
		}), "may not be modified"},
		{"host removed", withRoute(func(r *routev3.Route) { r.RequestHeadersToRemove = []string{"Host"} }),
			withRoute(func(r *routev3.Route) { r.RequestHeadersToRemove = []string{"x-host"} }), "may not be removed"},
		{"lone percent in a header value", withRoute(func(r *routev3.Route) {
			r.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-discount", Value: "50%"}}}
		}), withRoute(func(r *routev3.Route) {
			r.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-discount", Value: "50%%"}}}
		}), "no valid command"},
		{"unknown format command", withRoute(func(r *routev3.Route) {
			r.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "%NOT_A_COMMAND%"}}}
		}), withRoute(func(r *routev3.Route) {
			r.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "%REQ(x-b)%"}}}
		}), "not a command"},
		{"direct response too large", withRoute(func(r *routev3.Route) {
			r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200,
				Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: strings.Repeat("x", 4097)}}}}
		}), withRoute(func(r *routev3.Route) {
			r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200,
				Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: strings.Repeat("x", 4096)}}}}
		}), "maximum is 4096"},
		{"two rewrites", withRoute(func(r *routev3.Route) {
			r.GetRoute().PrefixRewrite = "/v2"
			r.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/v1"}, Substitution: "/v2"}
		}), withRoute(func(r *routev3.Route) { r.GetRoute().PrefixRewrite = "/v2" }), "only one of prefix_rewrite"},
		{"weights sum to zero", withRoute(func(r *routev3.Route) {
			r.GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: "a", Weight: wrapperspb.UInt32(0)}}}}
		}), withRoute(func(r *routev3.Route) {
			r.GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
				Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: "a", Weight: wrapperspb.UInt32(1)}}}}
		}), "sum of weights"},
		{"retry max below base", withRoute(func(r *routev3.Route) {
			r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond)}}
		}), withRoute(func(r *routev3.Route) {
			r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Second)}}
		}), "max_interval"},
		{"regex not RE2", withRoute(func(r *routev3.Route) {
			r.Match.Headers = []*routev3.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `(?<=a)b`}}}}}}
		}), withRoute(func(r *routev3.Route) {
			r.Match.Headers = []*routev3.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `^(GET|POST)$`}}}}}}
		}), "regex"},
		{"regex over the program size", withRoute(func(r *routev3.Route) {
			r.Match.Headers = []*routev3.HeaderMatcher{{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `^(a{20}){5}$`}}}}}}
		}), okVhost(), "program size"},
		{"router not last", listenerWith(t, func() *hcmv3.HttpConnectionManager {
			h := hcm(t)
			h.HttpFilters = append(h.HttpFilters, &hcmv3.HttpFilter{Name: "authz", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, extAuthz())}})
			return h
		}()), listenerWith(t, hcm(t)), "must be the last filter"},
		{"duplicate http filter name", listenerWith(t, func() *hcmv3.HttpConnectionManager {
			h := hcm(t)
			h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, extAuthz())}}}, h.HttpFilters...)
			return h
		}()), listenerWith(t, hcm(t)), "duplicate filter name"},
		{"no filter chains", &listenerv3.Listener{Name: "l", Address: socket("0.0.0.0", 80)}, listenerWith(t, hcm(t)), "no filter chains"},
		{"same filter chain match twice", func() proto.Message {
			l := listenerWith(t, hcm(t))
			l.FilterChains = append(l.FilterChains, proto.Clone(l.FilterChains[0]).(*listenerv3.FilterChain))
			return l
		}(), listenerWith(t, hcm(t)), "same matching rules"},
		{"EDS without config", &clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}, edsCluster("c"), "without an EDS config"},
		{"LOGICAL_DNS with two hosts", &clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}, LoadAssignment: cla("c", "a.svc", "b.svc")},
			&clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}, LoadAssignment: cla("c", "a.svc")}, "single lb_endpoint"},
		{"gRPC health check over HTTP/1", grpcHC(false), grpcHC(true), "HTTP/2 for gRPC healthchecking"},
		{"EDS host name", cla("c", "web.svc"), cla("c", "10.0.0.1"), "malformed IP address"},
		{"STATIC host name", &clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}, LoadAssignment: cla("c", "web.svc")},
			&clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}, LoadAssignment: cla("c", "::1")}, "malformed IP address"},
		{"duplicate local descriptor", perRoute(t, localRL(desc("a", time.Second), desc("a", time.Second))), perRoute(t, localRL(desc("a", time.Second), desc("b", time.Second))), "duplicate of descriptors[0]"},
		{"descriptor interval not a multiple", perRoute(t, localRL(desc("a", 1500*time.Millisecond))), perRoute(t, localRL(desc("a", 2*time.Second))), "not a multiple"},
		{"per-route local limit without bucket", perRoute(t, &localratelimitv3.LocalRateLimit{StatPrefix: "l"}), perRoute(t, localRL()), "token bucket must be set"},
		{"per-route config of no filter", withRoute(func(r *routev3.Route) {
			r.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.router": mustAny(t, &routerv3.Router{})}
		}), okVhost(), "not a route-specific config"},
		{"VHDS over SotW", &routev3.RouteConfiguration{Name: "edge-routes", Vhds: &routev3.Vhds{ConfigSource: &corev3.ConfigSource{
			ResourceApiVersion: corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: &corev3.ApiConfigSource{
				ApiType: corev3.ApiConfigSource_GRPC, TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "xds"}}}}}}}}},
			&routev3.RouteConfiguration{Name: "edge-routes", Vhds: &routev3.Vhds{ConfigSource: adsSource()}}, "delta protocol"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Resource(c.bad)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Resource(bad) = %v, want an error containing %q", err, c.want)
			}
			if err := Resource(c.good); err != nil {
				t.Errorf("Resource(good) = %v", err)
			}
		})
	}
}

func okVhost() *routev3.VirtualHost { return vhost("vh", []string{"a.example.com"}) }

func extAuthz() *extauthzv3.ExtAuthz {
	return &extauthzv3.ExtAuthz{Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "authz"}}}}}
}

func perRoute(t *testing.T, l *localratelimitv3.LocalRateLimit) *routev3.VirtualHost {
	vh := okVhost()
	vh.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.local_ratelimit": mustAny(t, l)}
	return vh
}

func grpcHC(h2 bool) *clusterv3.Cluster {
	c := edsCluster("c")
	c.HealthChecks = []*corev3.HealthCheck{{
		Timeout: durationpb.New(time.Second), Interval: durationpb.New(time.Second),
		UnhealthyThreshold: wrapperspb.UInt32(1), HealthyThreshold: wrapperspb.UInt32(1),
		HealthChecker: &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{}},
	}}
	if h2 {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptions: mustAnyNoT(&httpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}}}})}
	}
	return c
}

func mustAnyNoT(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // test fixture of a generated type: cannot fail
	}
	return a
}

// TestSetRules: the rules only a whole resource set can check.
func TestSetRules(t *testing.T) {
	t.Parallel()
	edge := listenerWith(t, func() *hcmv3.HttpConnectionManager {
		h := hcm(t)
		h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.ext_authz", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, extAuthz())}}}, h.HttpFilters...)
		return h
	}())
	off := mustAny(t, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
	routes := &routev3.RouteConfiguration{Name: "edge-routes", Vhds: &routev3.Vhds{ConfigSource: adsSource()}, VirtualHosts: []*routev3.VirtualHost{vhost("shared", []string{"*"})}}
	tenant := func(name, domain, key string, cfg *anypb.Any) *routev3.VirtualHost {
		vh := vhost("edge-routes/"+name, []string{domain})
		if key != "" {
			vh.Routes[0].TypedPerFilterConfig = map[string]*anypb.Any{key: cfg}
		}
		return vh
	}
	set := func(vhs ...*routev3.VirtualHost) Resources {
		r := Resources{Listeners: []types.Resource{edge}, Routes: []types.Resource{routes}, Clusters: []types.Resource{edsCluster("authz")}}
		for _, vh := range vhs {
			r.VirtualHosts = append(r.VirtualHosts, vh)
		}
		return r
	}
	for _, c := range []struct {
		name string
		r    Resources
		want string
	}{
		{"VHDS domain taken by another VHDS host", set(tenant("a", "a.example.com", "", nil), tenant("b", "A.example.com", "", nil)), "only unique values for domains"},
		{"VHDS catch-all beside the inline one", set(tenant("a", "*", "", nil)), "single wildcard domain"},
		{"per-filter key of no filter in the chain", set(tenant("a", "a.example.com", "envoy.filters.http.rbac", off)), "no HTTP filter of that name"},
		{"per-filter config of another filter's type", set(tenant("a", "a.example.com", "envoy.filters.http.ext_authz", mustAny(t, localRL()))), "is not the route-specific config of"},
		{"filter calls a cluster the set lacks", func() Resources { r := set(); r.Clusters = nil; return r }(), `cluster "authz" is not in the set`},
		{"duplicate names", set(tenant("a", "a.example.com", "", nil), tenant("a", "b.example.com", "", nil)), "duplicate name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := SetRules(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("SetRules = %v, want %q", err, c.want)
			}
		})
	}
	if err := Check(set(tenant("a", "a.example.com", "envoy.filters.http.ext_authz", off), tenant("b", "b.example.com", "", nil))); err != nil {
		t.Errorf("Check(valid set) = %v", err)
	}
}
