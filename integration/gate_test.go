package integration

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

// TestServedConfigPassesTheStrictConsumer runs serve with the example
// tenants (what make run serves) and fetches, as a strict xDS consumer
// would, everything each kind of node receives — an edge over delta ADS,
// a sidecar and a grpc-server for every example upstream, and a proxyless
// gRPC client over SotW — then checks it the way Envoy would on receipt:
// every resource, every Any inside it, Envoy's load-time rules and the
// cross-resource rules (validate.Check). The sidecar inbound listener
// failed this before the gate looked inside Any.
func TestServedConfigPassesTheStrictConsumer(t *testing.T) {
	p := startPlane(t, controlplane.Config{Preload: "../examples/tenants"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	edgeTypes := []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.VirtualHostType, resourcev3.ClusterType, resourcev3.EndpointType}
	type probe struct {
		name  string
		node  *corev3.Node
		delta bool
		types []string
	}
	probes := []probe{
		{"edge", node("gate-edge", "edge"), true, edgeTypes},
		{"grpc", node("gate-grpc", "grpc"), false, []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType}},
	}
	for _, w := range []struct{ tenant, service string }{{"tenant-a", "executive"}, {"tenant-a", "analytics"}, {"tenant-b", "executive"}} {
		for _, role := range []string{"sidecar", "grpc-server"} {
			n := node("gate-"+role+"-"+w.tenant, role)
			n.Metadata.Fields["tenant"] = structpb.NewStringValue(w.tenant)
			n.Metadata.Fields["service"] = structpb.NewStringValue(w.service)
			n.Metadata.Fields["appPort"] = structpb.NewNumberValue(8080)
			n.Metadata.Fields["appAddress"] = structpb.NewStringValue("127.0.0.1")
			probes = append(probes, probe{role + " " + w.tenant, n, true, []string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType}})
		}
	}
	for _, pr := range probes {
		t.Run(pr.name, func(t *testing.T) {
			var snap adsclient.Snapshot
			deadline := time.Now().Add(30 * time.Second)
			for {
				var err error
				snap, err = adsclient.Fetch(ctx, p.xdsCon, pr.node, pr.delta, pr.types, 300*time.Millisecond)
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				// The preload lands shortly after start: wait for listeners.
				if len(snap[resourcev3.ListenerType]) > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if len(snap[resourcev3.ListenerType]) == 0 {
				t.Fatalf("no listeners served: %v", snap)
			}
			list := func(typ string) []types.Resource {
				var out []types.Resource
				for _, m := range snap[typ] {
					out = append(out, m)
				}
				return out
			}
			if err := validate.Check(validate.Resources{
				Listeners: list(resourcev3.ListenerType), Routes: list(resourcev3.RouteType),
				Clusters: list(resourcev3.ClusterType), Endpoints: list(resourcev3.EndpointType),
				VirtualHosts: list(resourcev3.VirtualHostType),
			}); err != nil {
				t.Fatalf("served config fails the gate: %v", err)
			}
			t.Logf("%d listeners, %d route configurations, %d virtual hosts, %d clusters, %d endpoints pass",
				len(snap[resourcev3.ListenerType]), len(snap[resourcev3.RouteType]), len(snap[resourcev3.VirtualHostType]),
				len(snap[resourcev3.ClusterType]), len(snap[resourcev3.EndpointType]))
		})
	}
}
