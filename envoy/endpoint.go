package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// Endpoint is one upstream address.
type Endpoint struct {
	Host   string // IP address, or a DNS name for DNS clusters
	Port   int
	Weight int // 0: unweighted
}

// ClusterLoadAssignment lists a cluster's endpoints in one locality. The
// locality is explicit and weighted 1 because grpc-go drops localities
// without a weight (and rejects an unset locality); Envoy ignores locality
// weights unless locality-weighted LB is on, so this costs nothing there.
func ClusterLoadAssignment(cluster string, eps []Endpoint) *endpointv3.ClusterLoadAssignment {
	lbs := make([]*endpointv3.LbEndpoint, len(eps))
	for i, e := range eps {
		lbs[i] = &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: SocketAddress(e.Host, e.Port),
			}},
			LoadBalancingWeight: U32(e.Weight),
		}
	}
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			Locality:            &corev3.Locality{},
			LbEndpoints:         lbs,
			LoadBalancingWeight: U32(1),
		}},
	}
}
