package validate

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(listener)
	register(httpConnectionManager)
}

// terminalHTTP are the HTTP filters that end a chain (their factories'
// isTerminalFilterByProto is true).
var terminalHTTP = set(typeURL(&routerv3.Router{}), "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec")

// terminalNetwork are the network filters that end a chain.
var terminalNetwork = set(typeURL(&hcmv3.HttpConnectionManager{}), "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy")

// listener: source/common/listener_manager/listener_impl.cc and
// filter_chain_manager_impl.cc.
func listener(l *listenerv3.Listener) []error {
	var errs []error
	if l.GetApiListener() != nil {
		return nil // grpc-go's API listener: only its HCM matters (walked).
	}
	if len(l.GetFilterChains()) == 0 && l.GetDefaultFilterChain() == nil {
		errs = append(errs, fmt.Errorf("listener %s: no filter chains specified", l.GetName()))
	}
	// FilterChainManagerImpl::addFilterChains: "multiple filter chains with
	// the same matching rules are defined"; chain names must be unique for
	// a filter_chain_matcher to name them.
	names := map[string]bool{}
	for i, fc := range l.GetFilterChains() {
		for j := 0; j < i; j++ {
			if proto.Equal(fc.GetFilterChainMatch(), l.GetFilterChains()[j].GetFilterChainMatch()) {
				errs = append(errs, fmt.Errorf("listener %s: filter_chains[%d] and [%d]: multiple filter chains with the same matching rules", l.GetName(), j, i))
			}
		}
		if n := fc.GetName(); n != "" {
			if names[n] {
				errs = append(errs, fmt.Errorf("listener %s: filter_chains[%d]: duplicate filter chain name %q", l.GetName(), i, n))
			}
			names[n] = true
		}
		errs = append(errs, terminalLast(fmt.Sprintf("filter_chains[%d].filters", i), "network", len(fc.GetFilters()), func(k int) (string, string) {
			return fc.GetFilters()[k].GetName(), fc.GetFilters()[k].GetTypedConfig().GetTypeUrl()
		}, terminalNetwork)...)
	}
	return errs
}

// httpConnectionManager: the HTTP filter chain ends in exactly one
// terminal filter (Config::Utility::validateTerminalFilters, called from
// HttpConnectionManagerConfig's processFilter). Names must be unique too:
// typed_per_filter_config finds a filter by name, so two filters of one
// name make the per-route configs ambiguous (tenantmesh's own rule).
func httpConnectionManager(h *hcmv3.HttpConnectionManager) []error {
	fs := h.GetHttpFilters()
	errs := terminalLast("http_filters", "http", len(fs), func(k int) (string, string) {
		return fs[k].GetName(), fs[k].GetTypedConfig().GetTypeUrl()
	}, terminalHTTP)
	seen := map[string]bool{}
	for i, f := range fs {
		if seen[f.GetName()] {
			errs = append(errs, fmt.Errorf("http_filters[%d]: duplicate filter name %q", i, f.GetName()))
		}
		seen[f.GetName()] = true
	}
	return errs
}

// terminalLast: "Error: terminal filter named X of type Y must be the last
// filter in a Z filter chain." / "Error: non-terminal filter named X of
// type Y is the last filter in a Z filter chain."
func terminalLast(path, kind string, n int, at func(int) (name, typ string), terminal map[string]bool) []error {
	var errs []error
	for i := 0; i < n; i++ {
		name, typ := at(i)
		switch last := i == n-1; {
		case terminal[typ] && !last:
			errs = append(errs, fmt.Errorf("%s[%d]: terminal filter named %s of type %s must be the last filter in a %s filter chain", path, i, name, typ, kind))
		case !terminal[typ] && last:
			errs = append(errs, fmt.Errorf("%s[%d]: non-terminal filter named %s of type %s is the last filter in a %s filter chain", path, i, name, typ, kind))
		}
	}
	return errs
}
