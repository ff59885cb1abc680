package xds

import (
	"context"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// edgeGroup is the key of the group every edge (and every node without a
// role) belongs to.
const edgeGroup = "edge"

// groupKey names the group of nodes that receive identical resources.
func groupKey(n translate.Node) string {
	switch n.Role {
	case translate.RoleSidecar:
		// The app port is part of the configuration (cluster sidecar-app),
		// so sidecars that differ in it cannot share a group.
		return "sidecar/" + n.Tenant + "/" + n.Service + "/" + strconv.Itoa(n.AppPort)
	case translate.RoleGRPC:
		return "grpc"
	case translate.RoleGRPCServer:
		return "grpc-server/" + n.Tenant + "/" + n.Service + "/" + n.AppAddress + ":" + strconv.Itoa(n.AppPort)
	default:
		return edgeGroup
	}
}

func groupKeyOf(n *corev3.Node) string { return groupKey(translate.NodeFromProto(n)) }

func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			s.openStream(ctx, streamRef{false, id})
			return s.waitReady(ctx)
		},
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, _ string) error {
			s.openStream(ctx, streamRef{true, id})
			return s.waitReady(ctx)
		},
		StreamClosedFunc:      func(id int64, _ *corev3.Node) { s.dropStream(streamRef{false, id}) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { s.dropStream(streamRef{true, id}) },
		StreamRequestFunc: func(id int64, req *discoverygrpc.DiscoveryRequest) error {
			return s.onRequest(streamRef{false, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
		},
		StreamDeltaRequestFunc: func(id int64, req *discoverygrpc.DeltaDiscoveryRequest) error {
			return s.onRequest(streamRef{true, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
		},
		StreamResponseFunc: func(_ context.Context, id int64, req *discoverygrpc.DiscoveryRequest, resp *discoverygrpc.DiscoveryResponse) {
			s.onResponse(streamRef{false, id}, req.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo(), len(resp.GetResources()))
		},
		StreamDeltaResponseFunc: func(id int64, req *discoverygrpc.DeltaDiscoveryRequest, resp *discoverygrpc.DeltaDiscoveryResponse) {
			s.onResponse(streamRef{true, id}, req.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo(), len(resp.GetResources()))
		},
	}
}

func (s *Server) onResponse(ref streamRef, typ, nonce, version string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics.responses.WithLabelValues(shortType(typ)).Inc()
	s.metrics.responseResources.WithLabelValues(shortType(typ)).Add(float64(n))
	key, ok := s.streams[ref]
	if !ok || typ == RateLimitConfigType {
		return
	}
	s.acc.recordSent(sentKey{ref.delta, ref.id, nonce}, groupType{key, typ}, version)
}

// onRequest registers the stream's node, then treats the request as the
// ACK or NACK of the response it names.
func (s *Server) onRequest(ref streamRef, node *corev3.Node, typ, nonce string, nack *status.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, known := s.streams[ref]
	if err := s.ensureGroup(ref, translate.NodeFromProto(node)); err != nil {
		return err
	}
	if !known {
		s.registerNode(ref, node)
	}
	if nonce == "" {
		return nil
	}
	sent, ok := s.acc.takeSent(sentKey{ref.delta, ref.id, nonce})
	if !ok {
		return nil
	}
	if nack == nil {
		s.onACK(ref, node, typ, sent)
	} else {
		s.onNACK(ref, node, typ, sent, nack) // nackguard.go
	}
	return nil
}

// tenantRevision is the etcd mod revision of the tenant's current value,
// which is what a status record is about. Caller holds s.mu.
func (s *Server) tenantRevision(id string) int64 {
	t, ok := s.cat.Tenant(id)
	if !ok {
		return 0
	}
	rev, err := strconv.ParseInt(t.Metadata.ResourceVersion, 10, 64)
	if err != nil {
		return 0
	}
	return rev
}
