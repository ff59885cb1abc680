package envoy

import (
	"fmt"

	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

func httpFilter(name string, cfg proto.Message) (*hcmv3.HttpFilter, error) {
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("http filter %s: %w", name, err)
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// RouterFilter is the terminal HTTP filter.
func RouterFilter() (*hcmv3.HttpFilter, error) {
	return httpFilter(FilterRouter, &routerv3.Router{})
}
