package xds

import (
	"context"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tenantmesh/tenantmesh/tenants"
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
		StreamOpenFunc: func(ctx context.Context, id int64, typ string) error {
			return s.openStream(ctx, streamRef{false, id}, typ)
		},
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, typ string) error {
			return s.openStream(ctx, streamRef{true, id}, typ)
		},
		StreamClosedFunc:      func(id int64, _ *corev3.Node) { s.dropStream(streamRef{false, id}) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { s.dropStream(streamRef{true, id}) },
		// The request's node becomes the node it is served as: the watches
		// go-control-plane creates after the callback route by it
		// (muxCache), and a delta stream keeps it for its later requests
		// (delta/v3/server.go, processDelta, reads req.Node after
		// OnStreamDeltaRequest).
		StreamRequestFunc: func(id int64, req *discoverygrpc.DiscoveryRequest) error {
			node, err := s.onRequest(streamRef{false, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
			if node != nil {
				req.Node = node
			}
			return err
		},
		StreamDeltaRequestFunc: func(id int64, req *discoverygrpc.DeltaDiscoveryRequest) error {
			node, err := s.onRequest(streamRef{true, id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
			if node != nil {
				req.Node = node
			}
			return err
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

// onRequest authorizes the request's node (see authorize), registers the
// stream in its group on its first request, then treats the request as
// the ACK or NACK of the response it names. It returns the node the
// request is served as.
func (s *Server) onRequest(ref streamRef, raw *corev3.Node, typ, nonce string, nack *status.Status) (*corev3.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[ref]
	if c == nil { // every stream is opened first; be safe anyway
		c = &streamConn{}
		s.conns[ref] = c
	}
	node, err := s.authorize(c, raw, typ)
	if err != nil {
		return nil, err
	}
	if _, known := s.streams[ref]; !known {
		n := translate.NodeFromProto(node)
		key := groupKey(n)
		if err := s.admitGroup(c, key, node.GetId()); err != nil {
			return nil, err
		}
		if err := s.ensureGroup(ref, n); err != nil {
			return nil, err
		}
		s.joinedGroup(c, key)
		s.registerNode(ref, node, c.uri)
	}
	return node, s.onAck(ref, node, typ, nonce, nack)
}

// onAck settles the response a request names: an ACK accepts, a NACK
// blames and rolls back. Caller holds s.mu.
func (s *Server) onAck(ref streamRef, node *corev3.Node, typ, nonce string, nack *status.Status) error {
	if nonce == "" {
		return nil
	}
	sent, ok := s.acc.takeSent(sentKey{ref.delta, ref.id, nonce})
	if !ok {
		return nil
	}
	if nack == nil {
		for _, id := range s.acc.acked(sent.gt, sent.version) {
			s.queueStatus(tenants.Status{Tenant: id, State: tenants.StateAccepted, Revision: s.tenantRevision(id)})
		}
		return nil
	}
	s.metrics.nacks.WithLabelValues(shortType(typ)).Inc()
	msg := nack.GetMessage()
	blamed := s.acc.nacked(sent.gt, sent.version, msg)
	s.log.Error("proxy rejected configuration (NACK)", "group", sent.gt.group, "type", typ,
		"node", node.GetId(), "tenants", blamed, "error_detail", msg)
	if len(blamed) == 0 {
		return nil
	}
	for _, id := range blamed {
		s.log.Warn("rolling tenant back to its last accepted version", "tenant_id", id)
		s.queueStatus(tenants.Status{Tenant: id, State: tenants.StateRejected, Revision: s.tenantRevision(id),
			Message: "rejected by " + node.GetId() + " (" + shortType(typ) + "): " + msg})
	}
	if err := s.syncAll(); err != nil {
		s.log.Error("rollback not published", "err", err)
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
