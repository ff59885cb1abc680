package envoy

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// HTTPListenerOptions describe an edge HTTP listener.
type HTTPListenerOptions struct {
	Name        string // listener name, also the HCM stat prefix
	Address     string // bind address
	Port        int
	RouteConfig string // RDS route configuration name
	// VirtualHostKey, when set, is the header SetVirtualHostKey fills for
	// the route configuration's vhost_header (edge only).
	VirtualHostKey string
	Filters        []*hcmv3.HttpFilter // in order; the router is appended
}

// EdgeHTTPConnectionManager is the HCM of an edge listener, hardened for
// untrusted clients:
//   - normalize_path, merge_slashes and REJECT_REQUEST for escaped slashes,
//     so /tenants/a/../b or /tenants%2Fb cannot reach another tenant's
//     routes by a path the router and the upstream read differently;
//   - use_remote_address: Envoy is the edge, the client address is the peer;
//   - headers with underscores rejected (x_tenant_context would otherwise
//     slip past the x-tenant-* stripping and be read as x-tenant-context by
//     CGI-style upstream stacks);
//   - client-sent internal tenant headers removed before routing
//     (StripInternalHeaders), then the virtual host key computed
//     (SetVirtualHostKey) when o.VirtualHostKey is set;
//   - the port stripped from Host before virtual host matching, so domains
//     are plain host names;
//   - JSON access log and JSON local replies.
func EdgeHTTPConnectionManager(o HTTPListenerOptions) (*hcmv3.HttpConnectionManager, error) {
	strip, err := StripInternalHeaders()
	if err != nil {
		return nil, err
	}
	alog, err := StdoutJSONAccessLog()
	if err != nil {
		return nil, err
	}
	lr, err := LocalReplyConfig()
	if err != nil {
		return nil, err
	}
	router, err := RouterFilter()
	if err != nil {
		return nil, err
	}
	early := []*corev3.TypedExtensionConfig{strip}
	if o.VirtualHostKey != "" {
		key, err := SetVirtualHostKey(o.VirtualHostKey)
		if err != nil {
			return nil, err
		}
		early = append(early, key)
	}
	return &hcmv3.HttpConnectionManager{
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		StatPrefix: o.Name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    ADS(),
			RouteConfigName: o.RouteConfig,
		}},
		HttpFilters:                   append(append([]*hcmv3.HttpFilter(nil), o.Filters...), router),
		NormalizePath:                 wrapperspb.Bool(true),
		MergeSlashes:                  true,
		PathWithEscapedSlashesAction:  hcmv3.HttpConnectionManager_REJECT_REQUEST,
		UseRemoteAddress:              wrapperspb.Bool(true),
		GenerateRequestId:             wrapperspb.Bool(true),
		StripPortMode:                 &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
		EarlyHeaderMutationExtensions: early,
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{
			HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_REJECT_REQUEST,
		},
		RequestHeadersTimeout: Duration(RequestHeadersTimeout),
		StreamIdleTimeout:     Duration(StreamIdleTimeout),
		AccessLog:             []*accesslogv3.AccessLog{alog},
		LocalReplyConfig:      lr,
	}, nil
}

// HTTPListener is a TCP listener with one filter chain running the given HCM.
func HTTPListener(o HTTPListenerOptions, hcm *hcmv3.HttpConnectionManager) (*listenerv3.Listener, error) {
	a, err := Any(hcm)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", o.Name, err)
	}
	return &listenerv3.Listener{
		Name:    o.Name,
		Address: SocketAddress(o.Address, o.Port),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{Name: FilterHCM, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}},
		}},
	}, nil
}

// APIListener is a proxyless gRPC client's listener: no socket, just an
// HCM whose RDS route configuration routeConfig tells the client where
// the target name goes. grpc-go requires the route config source to be
// ADS (or self) and the router to be the last (here: only) HTTP filter.
func APIListener(name, routeConfig string) (*listenerv3.Listener, error) {
	router, err := RouterFilter()
	if err != nil {
		return nil, err
	}
	a, err := Any(&hcmv3.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    ADS(),
			RouteConfigName: routeConfig,
		}},
		HttpFilters: []*hcmv3.HttpFilter{router},
	})
	if err != nil {
		return nil, fmt.Errorf("api listener %s: %w", name, err)
	}
	return &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: a},
	}, nil
}
