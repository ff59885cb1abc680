// Package adsclient is a small ADS client (state-of-the-world and delta)
// that behaves like Envoy on the wire: it subscribes, ACKs or NACKs every
// response and keeps the latest resources. `tenantmesh xds dump`, the
// integration tests and the benchmarks use it.
package adsclient

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Update is one discovery response as the client saw it.
type Update struct {
	TypeURL   string
	Version   string
	Nonce     string
	Resources map[string]*anypb.Any // SotW: the response's resources; delta: added or changed
	Versions  map[string]string     // delta only: each resource's version
	Removed   []string              // delta only
	Bytes     int                   // encoded size of the response on the wire
}

// Client is one ADS stream.
type Client struct {
	delta bool
	node  *corev3.Node

	sotw  discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	dstrm discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesClient

	mu        sync.Mutex
	sentNode  bool
	subscribe map[string][]string // SotW: the names last requested per type
	versions  map[string]string   // SotW: last accepted version per type
}

// Open starts an ADS stream on conn. With delta it speaks the incremental
// protocol (DeltaAggregatedResources), otherwise state of the world.
func Open(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node, delta bool) (*Client, error) {
	c := &Client{delta: delta, node: node, subscribe: map[string][]string{}, versions: map[string]string{}}
	ads := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn)
	var err error
	if delta {
		c.dstrm, err = ads.DeltaAggregatedResources(ctx)
	} else {
		c.sotw, err = ads.StreamAggregatedResources(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("open ADS stream: %w", err)
	}
	return c, nil
}

// Subscribe asks for resources of a type; no names means all (wildcard).
func (c *Client) Subscribe(typeURL string, names ...string) error {
	return c.SubscribeHolding(typeURL, nil, names...)
}

// SubscribeHolding is Subscribe for a delta client that already holds
// resources at these versions, as Envoy reconnecting to a control plane
// sends them (initial_resource_versions): only what differs is resent.
// SotW clients ignore held.
func (c *Client) SubscribeHolding(typeURL string, held map[string]string, names ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	node := c.nodeOnce()
	if c.delta {
		sub := names
		if len(sub) == 0 {
			sub = []string{"*"}
		}
		return c.dstrm.Send(&discoverygrpc.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNamesSubscribe: sub,
			InitialResourceVersions: held})
	}
	c.subscribe[typeURL] = names
	return c.sotw.Send(&discoverygrpc.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: names, VersionInfo: c.versions[typeURL]})
}

// SubscribeNamespace subscribes a delta stream to typeURL as Envoy does
// for a namespace watch such as VHDS (source/common/router/vhds.cc:
// use_namespace_matching): with no resource names at all, neither the
// namespace nor "*". Envoy's delta mux hands the subscription state no
// names for such a watch (new_grpc_mux_impl.cc, updateWatch), so the
// type's first request is the legacy wildcard (delta_subscription_state.cc,
// subscriptionUpdatePending, getNextRequestAckless). Envoy then keeps each
// resource whose name up to its last '/' is the namespace (watch_map.cc,
// watchesInterestedIn); InNamespace is that test. State of the world has
// no such form, so a SotW client gets an error.
func (c *Client) SubscribeNamespace(typeURL string) error {
	if !c.delta {
		return fmt.Errorf("subscribe %s: namespace subscriptions are delta only", typeURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dstrm.Send(&discoverygrpc.DeltaDiscoveryRequest{Node: c.nodeOnce(), TypeUrl: typeURL})
}

// InNamespace reports whether Envoy's namespace watch on namespace keeps
// the resource name: the name itself, or its part before the last '/'
// (empty without one), is the namespace (watch_map.cc,
// watchesInterestedIn and namespaceFromName).
func InNamespace(name, namespace string) bool {
	ns := ""
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		ns = name[:i]
	}
	return name == namespace || ns == namespace
}

func (c *Client) nodeOnce() *corev3.Node {
	if c.sentNode {
		return nil
	}
	c.sentNode = true
	return c.node
}

// Recv waits for the next response. The caller must Ack or Nack it.
func (c *Client) Recv() (*Update, error) {
	if c.delta {
		r, err := c.dstrm.Recv()
		if err != nil {
			return nil, err
		}
		u := &Update{TypeURL: r.GetTypeUrl(), Version: r.GetSystemVersionInfo(), Nonce: r.GetNonce(),
			Resources: map[string]*anypb.Any{}, Versions: map[string]string{}, Removed: r.GetRemovedResources(), Bytes: proto.Size(r)}
		for _, res := range r.GetResources() {
			u.Resources[res.GetName()] = res.GetResource()
			u.Versions[res.GetName()] = res.GetVersion()
		}
		return u, nil
	}
	r, err := c.sotw.Recv()
	if err != nil {
		return nil, err
	}
	u := &Update{TypeURL: r.GetTypeUrl(), Version: r.GetVersionInfo(), Nonce: r.GetNonce(),
		Resources: map[string]*anypb.Any{}, Bytes: proto.Size(r)}
	for _, a := range r.GetResources() {
		name, err := ResourceName(a)
		if err != nil {
			return nil, err
		}
		u.Resources[name] = a
	}
	return u, nil
}

// Ack accepts an update.
func (c *Client) Ack(u *Update) error { return c.answer(u, nil) }

// Nack rejects an update with an error message, as Envoy does when a
// resource fails its checks.
func (c *Client) Nack(u *Update, message string) error {
	return c.answer(u, &status.Status{Code: 3, Message: message})
}

func (c *Client) answer(u *Update, nack *status.Status) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.delta {
		return c.dstrm.Send(&discoverygrpc.DeltaDiscoveryRequest{Node: c.nodeOnce(), TypeUrl: u.TypeURL, ResponseNonce: u.Nonce, ErrorDetail: nack})
	}
	if nack == nil {
		c.versions[u.TypeURL] = u.Version
	}
	return c.sotw.Send(&discoverygrpc.DiscoveryRequest{Node: c.nodeOnce(), TypeUrl: u.TypeURL, ResponseNonce: u.Nonce,
		VersionInfo: c.versions[u.TypeURL], ResourceNames: c.subscribe[u.TypeURL], ErrorDetail: nack})
}

// Close ends the stream.
func (c *Client) Close() error {
	if c.delta {
		return c.dstrm.CloseSend()
	}
	return c.sotw.CloseSend()
}

// ResourceName decodes an Any far enough to read its name field.
func ResourceName(a *anypb.Any) (string, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", fmt.Errorf("decode %s: %w", a.GetTypeUrl(), err)
	}
	if cla, ok := m.(interface{ GetClusterName() string }); ok {
		return cla.GetClusterName(), nil
	}
	n, ok := m.(interface{ GetName() string })
	if !ok {
		return "", fmt.Errorf("%s has no name", a.GetTypeUrl())
	}
	return n.GetName(), nil
}
