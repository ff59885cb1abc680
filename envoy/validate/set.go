package validate

import (
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Resources is one node's resource set, by kind.
type Resources struct {
	Listeners, Routes, Clusters, Endpoints, VirtualHosts []types.Resource
}

// Check runs Resource on every resource and then the rules only the whole
// set can check (SetRules). It is the gate: nothing that fails it may be
// published.
func Check(r Resources) error {
	var errs []error
	for _, kind := range r.kinds() {
		for _, m := range kind.list {
			if err := Resource(m); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", kind.name, nameOf(m), err))
			}
		}
	}
	if err := SetRules(r); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type kind struct {
	name string
	list []types.Resource
}

func (r Resources) kinds() []kind {
	return []kind{
		{"listener", r.Listeners}, {"route configuration", r.Routes}, {"cluster", r.Clusters},
		{"endpoints", r.Endpoints}, {"virtual host", r.VirtualHosts},
	}
}

// SetRules are the cross-resource rules:
//   - names unique per kind (the xDS protocol keys resources by name; two
//     of one name in a response is a NACK);
//   - domains unique across a route configuration's own virtual hosts and
//     its VHDS ones ("<route configuration>/<entry>"): Envoy's
//     RouteConfigUpdateReceiverImpl rebuilds the configuration with both
//     and RouteMatcher refuses a duplicate (source/common/router/
//     route_config_update_receiver_impl.cc, config_impl.cc);
//   - every typed_per_filter_config key names an HTTP filter of every
//     connection manager that uses the route configuration, with that
//     filter's route-specific config type. Envoy silently ignores an entry
//     for a filter not in the chain, which is always a translation bug
//     here: the limit or exemption it carries does nothing.
func SetRules(r Resources) error {
	var errs []error
	for _, k := range r.kinds() {
		seen := map[string]bool{}
		for _, m := range k.list {
			n := nameOf(m)
			if seen[n] {
				errs = append(errs, fmt.Errorf("%s %s: duplicate name", k.name, n))
			}
			seen[n] = true
		}
	}
	vhds := map[string][]*routev3.VirtualHost{}
	for _, m := range r.VirtualHosts {
		vh, ok := m.(*routev3.VirtualHost)
		if !ok {
			continue
		}
		if i := strings.LastIndex(vh.GetName(), "/"); i > 0 {
			vhds[vh.GetName()[:i]] = append(vhds[vh.GetName()[:i]], vh)
		}
	}
	chains := filterChains(r.Listeners)
	for _, m := range r.Routes {
		rc, ok := m.(*routev3.RouteConfiguration)
		if !ok {
			continue
		}
		if extra := vhds[rc.GetName()]; len(extra) > 0 {
			errs = append(errs, Domains(rc.GetName(), append(append([]*routev3.VirtualHost(nil), rc.GetVirtualHosts()...), extra...))...)
		}
		for _, hcm := range chains.rds[rc.GetName()] {
			errs = append(errs, perFilterKeys(hcm, rc, vhds[rc.GetName()])...)
		}
	}
	for _, hcm := range chains.inline {
		errs = append(errs, perFilterKeys(hcm, hcm.GetRouteConfig(), nil)...)
	}
	errs = append(errs, clusterReferences(r)...)
	return errors.Join(errs...)
}

var hcmType = typeURL(&hcmv3.HttpConnectionManager{})

// references are the messages that name a cluster a filter calls out to.
var references = map[protoreflect.FullName]bool{
	(&corev3.GrpcService_EnvoyGrpc{}).ProtoReflect().Descriptor().FullName(): true,
	(&corev3.HttpUri{}).ProtoReflect().Descriptor().FullName():               true,
}

// clusterReferences: every cluster a listener's filters call (ext_authz
// and rate limit gRPC services, remote JWKS) is in the set. Envoy resolves
// an envoy_grpc cluster when it builds the filter
// (Grpc::AsyncClientManagerImpl: "Unknown gRPC client cluster '…'"), so a
// listener naming a missing one is refused; a remote JWKS fetch against a
// missing cluster fails every request instead.
func clusterReferences(r Resources) []error {
	have := map[string]bool{}
	for _, c := range r.Clusters {
		have[nameOf(c)] = true
	}
	var errs []error
	for _, l := range r.Listeners {
		walker{visit: func(p *path, m proto.Message, _ bool) {
			var c string
			switch x := m.(type) {
			case *corev3.GrpcService_EnvoyGrpc:
				c = x.GetClusterName()
			case *corev3.HttpUri:
				c = x.GetCluster()
			default:
				return
			}
			if !have[c] {
				errs = append(errs, fmt.Errorf("listener %s: %w", nameOf(l), at(p, fmt.Errorf("cluster %q is not in the set", c))))
			}
		}}.walk(nil, l, true)
	}
	return errs
}

type chains struct {
	rds    map[string][]*hcmv3.HttpConnectionManager // by route configuration name
	inline []*hcmv3.HttpConnectionManager            // with an inline route_config
}

// filterChains finds every HTTP connection manager of the listeners (in
// filter chains, the default chain and API listeners).
func filterChains(listeners []types.Resource) chains {
	c := chains{rds: map[string][]*hcmv3.HttpConnectionManager{}}
	add := func(a *anypb.Any) {
		if a.GetTypeUrl() != hcmType {
			return
		}
		h := &hcmv3.HttpConnectionManager{}
		if proto.Unmarshal(a.GetValue(), h) != nil {
			return // Deep reports it
		}
		if n := h.GetRds().GetRouteConfigName(); n != "" {
			c.rds[n] = append(c.rds[n], h)
		} else if h.GetRouteConfig() != nil {
			c.inline = append(c.inline, h)
		}
	}
	for _, m := range listeners {
		l, ok := m.(*listenerv3.Listener)
		if !ok {
			continue
		}
		add(l.GetApiListener().GetApiListener())
		fcs := append([]*listenerv3.FilterChain{l.GetDefaultFilterChain()}, l.GetFilterChains()...)
		for _, fc := range fcs {
			for _, f := range fc.GetFilters() {
				add(f.GetTypedConfig())
			}
		}
	}
	return c
}

// perFilterKeys checks the typed_per_filter_config keys of rc, its
// virtual hosts (inline and VHDS) and their routes against hcm's filters.
func perFilterKeys(hcm *hcmv3.HttpConnectionManager, rc *routev3.RouteConfiguration, vhds []*routev3.VirtualHost) []error {
	filters := HTTPFilters(hcm.GetHttpFilters())
	errs := filters.check("route configuration "+rc.GetName(), rc.GetName(), rc.GetTypedPerFilterConfig())
	for _, vh := range append(append([]*routev3.VirtualHost(nil), rc.GetVirtualHosts()...), vhds...) {
		errs = append(errs, filters.VirtualHost(rc.GetName(), vh)...)
	}
	return errs
}

// Filters are the HTTP filters of a chain: name → config type URL.
type Filters map[string]string

// HTTPFilters indexes a connection manager's HTTP filters.
func HTTPFilters(fs []*hcmv3.HttpFilter) Filters {
	out := make(Filters, len(fs))
	for _, f := range fs {
		out[f.GetName()] = f.GetTypedConfig().GetTypeUrl()
	}
	return out
}

// VirtualHost checks the typed_per_filter_config keys of vh and of every
// route it can select (route list and match tree) against the chain that
// serves routeConfig: each key names a filter of the chain, with that
// filter's route-specific config type. A translator that builds one
// virtual host at a time checks it with the chain it will be served to.
func (f Filters) VirtualHost(routeConfig string, vh *routev3.VirtualHost) []error {
	if len(f) == 0 {
		return nil
	}
	errs := f.check("virtual host "+vh.GetName(), routeConfig, vh.GetTypedPerFilterConfig())
	for _, rt := range vhostRoutes(vh) {
		errs = append(errs, f.check("virtual host "+vh.GetName()+" route "+rt.GetName(), routeConfig, rt.GetTypedPerFilterConfig())...)
	}
	return errs
}

// Resource is Resource(vh) and VirtualHost in one walk: what a translator
// that builds one virtual host at a time runs on it before publishing. A
// nil Filters (chain unknown) checks vh alone.
func (f Filters) Resource(routeConfig string, vh *routev3.VirtualHost) error {
	if f == nil {
		return Resource(vh)
	}
	return resource(vh, func(m proto.Message) []error {
		switch x := m.(type) {
		case *routev3.VirtualHost:
			return f.check("virtual host "+x.GetName(), routeConfig, x.GetTypedPerFilterConfig())
		case *routev3.Route:
			return f.check("route "+x.GetName(), routeConfig, x.GetTypedPerFilterConfig())
		}
		return nil
	})
}

func (f Filters) check(owner, routeConfig string, m map[string]*anypb.Any) []error {
	var errs []error
	for _, k := range sortedKeys(m) {
		ft, ok := f[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: typed_per_filter_config[%q]: no HTTP filter of that name in the chain using route configuration %s", owner, k, routeConfig))
			continue
		}
		t, err := perRouteConfigType(m[k])
		if err != nil {
			continue // Resource reports it
		}
		if t != "" && perRouteType[ft] != t {
			errs = append(errs, fmt.Errorf("%s: typed_per_filter_config[%q]: %s is not the route-specific config of %s (want %s)", owner, k, t, ft, perRouteType[ft]))
		}
	}
	return errs
}

// vhostRoutes are the routes of a virtual host's route list and of every
// Route / RouteList action of its match tree.
func vhostRoutes(vh *routev3.VirtualHost) []*routev3.Route {
	out := append([]*routev3.Route(nil), vh.GetRoutes()...)
	if vh.GetMatcher() == nil {
		return out
	}
	walker{visit: func(_ *path, m proto.Message, _ bool) {
		if r, ok := m.(*routev3.Route); ok {
			out = append(out, r)
		}
	}}.walk(nil, vh.GetMatcher(), true)
	return out
}

func nameOf(m proto.Message) string {
	switch r := m.(type) {
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return "?"
}
