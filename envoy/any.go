package envoy

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Any wraps m in an Any with deterministic marshalling. anypb.New uses the
// default (random map order) marshaller, so two builds of the same config
// would differ byte-wise whenever m holds a map (context_extensions,
// Struct metadata) — and every differing byte is a resource version change
// pushed to every Envoy.
func Any(m proto.Message) (*anypb.Any, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return &anypb.Any{
		TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()),
		Value:   b,
	}, nil
}

// TypedExtension wraps a config in a named TypedExtensionConfig.
func TypedExtension(name string, m proto.Message) (*corev3.TypedExtensionConfig, error) {
	a, err := Any(m)
	if err != nil {
		return nil, fmt.Errorf("extension %s: %w", name, err)
	}
	return &corev3.TypedExtensionConfig{Name: name, TypedConfig: a}, nil
}

// ADS is the config source of every dynamic resource: the aggregated stream
// the resource itself arrived on, so all updates are ordered on one stream.
//
// It returns one shared message (tens of thousands of clusters point at
// it); like every proto these builders return, it must not be modified.
func ADS() *corev3.ConfigSource { return adsSource }

var adsSource = &corev3.ConfigSource{
	ResourceApiVersion:    corev3.ApiVersion_V3,
	ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
}

// Duration converts a time.Duration (nil for zero, so unset stays unset).
func Duration(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// U32 wraps a non-negative int as UInt32Value (nil for zero).
func U32(n int) *wrapperspb.UInt32Value {
	if n <= 0 {
		return nil
	}
	return wrapperspb.UInt32(uint32(n))
}

// Always is a runtime fraction of 100%, for filters that are off unless
// explicitly enabled (local rate limit).
func Always(runtimeKey string) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{
		RuntimeKey:   runtimeKey,
		DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED},
	}
}

// SocketAddress is a TCP address; host may be an IP or a DNS name.
func SocketAddress(host string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// HeaderOverwrite sets a header, replacing any value it already has. Leaving
// append_action unset would default to APPEND_IF_EXISTS_OR_ADD, which keeps
// a value a client forged next to ours.
func HeaderOverwrite(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
