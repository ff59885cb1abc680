package xds

import (
	"context"
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// NACKOptions bound the NACKs the server acts on (docs/xds.md, NACKs).
// Which streams may answer at all follows Options.RequireIdentity: with
// it, an answer (NACK or ACK) counts only from a stream whose verified
// SPIFFE ID is of the role of the group whose resources it answers (an
// edge ID for the edge group, the tenant's service ID for its sidecar and
// grpc-server groups, a grpc ID for the grpc group); others are logged
// and counted, and change nothing. Without it every stream counts
// (loopback development).
type NACKOptions struct {
	// PerMinute is how many NACKs of one node count per minute (a token
	// bucket of that size, refilled at that rate); more are ignored.
	// Default DefaultNACKsPerMinute.
	PerMinute int
	// Now is the clock of the rate limit (default time.Now).
	Now func() time.Time
}

// DefaultNACKsPerMinute bounds the NACKs of one node that count. Envoy
// sends one NACK per response it rejects (the error_detail is cleared
// once sent: GrpcMuxImpl::sendDiscoveryRequest,
// source/extensions/config_subscription/grpc/grpc_mux_impl.cc), so a
// proxy exceeds it only when it is sent that many bad versions in a
// minute, or misbehaves.
const DefaultNACKsPerMinute = 20

// Why an answer changed nothing (label of tenantmesh_xds_nacks_ignored_total).
const (
	ignoredUnauthenticated = "unauthenticated"
	ignoredWrongRole       = "wrong_role"
	ignoredRateLimited     = "rate_limited"
)

// maxErrorDetail bounds the error detail kept per node for /debug/xds
// (Envoy truncates what it sends to 4 KiB: truncateGrpcStatusMessage in
// source/common/config/utility.cc).
const maxErrorDetail = 512

// nackGuard decides whether an answer counts and keeps every node's NACK
// record. It is guarded by Server.mu.
type nackGuard struct {
	perMinute float64
	now       func() time.Time
	// buckets are the rate limit, by the verified identity when there is
	// one (a node id is the client's choice), else by node id.
	buckets map[string]*bucket
	stats   map[string]*NACKStats // by node id
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NACKStats is a node's NACK record in /debug/xds and `tenantmesh xds nodes`.
type NACKStats struct {
	// NACKs counts every NACK the node sent; NACKsIgnored those that
	// changed nothing (untrusted or over the rate limit).
	NACKs        int `json:"nacks,omitempty"`
	NACKsIgnored int `json:"nacksIgnored,omitempty"`
	// LastNACK is when the last one arrived, LastNACKError its error
	// detail (cut to 512 bytes), LastNACKIgnored why it changed nothing.
	LastNACK        *time.Time `json:"lastNack,omitempty"`
	LastNACKError   string     `json:"lastNackError,omitempty"`
	LastNACKIgnored string     `json:"lastNackIgnored,omitempty"`
}

// maxTracked bounds the per-node tables; beyond it idle entries go.
const maxTracked = 4096

func newNACKGuard(o NACKOptions) *nackGuard {
	if o.PerMinute <= 0 {
		o.PerMinute = DefaultNACKsPerMinute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &nackGuard{perMinute: float64(o.PerMinute), now: o.Now, buckets: map[string]*bucket{}, stats: map[string]*NACKStats{}}
}

// untrusted says why an answer on stream ref about group's resources
// does not count ("" when it does). openStream and bindNode (identity.go)
// refuse a stream without a verified identity and bind its node to it,
// so under RequireIdentity this holds for every admitted stream; it is
// checked here again because an answer must not pin or accept another
// role's configuration whatever admitted the stream. Caller holds s.mu.
func (s *Server) untrusted(ref streamRef, group string) string {
	if !s.requireIdentity {
		return ""
	}
	c := s.conns[ref]
	if c == nil || c.uri == "" {
		return ignoredUnauthenticated
	}
	g, ok := s.groups[group]
	if !ok || !identityServes(c.id, g.node) {
		return ignoredWrongRole
	}
	return ""
}

// identityServes reports whether a verified ID is of the role of a
// group's node (internal/identity's scheme).
func identityServes(id identity.ID, n translate.Node) bool {
	switch n.Role {
	case translate.RoleEdge:
		return id.Kind == identity.KindEdge
	case translate.RoleGRPC:
		return id.Kind == identity.KindGRPC
	case translate.RoleSidecar, translate.RoleGRPCServer:
		return id.Kind == identity.KindService && id.Tenant == n.Tenant && id.Service == n.Service
	}
	return false
}

// allow takes one token of key's bucket. Caller holds s.mu.
func (g *nackGuard) allow(key string, now time.Time) bool {
	b := g.buckets[key]
	if b == nil {
		if len(g.buckets) >= maxTracked {
			g.pruneBuckets(now)
		}
		b = &bucket{tokens: g.perMinute, at: now}
		g.buckets[key] = b
	}
	b.tokens = min(g.perMinute, b.tokens+now.Sub(b.at).Minutes()*g.perMinute)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// pruneBuckets drops the buckets that have refilled: a full bucket is
// what a new one is.
func (g *nackGuard) pruneBuckets(now time.Time) {
	for k, b := range g.buckets {
		if b.tokens+now.Sub(b.at).Minutes()*g.perMinute >= g.perMinute {
			delete(g.buckets, k)
		}
	}
}

// record adds a NACK to node's record. Caller holds s.mu.
func (s *Server) recordNACK(node, msg, ignored string, now time.Time) {
	st := s.guard.stats[node]
	if st == nil {
		if len(s.guard.stats) >= maxTracked {
			s.pruneStats()
		}
		st = &NACKStats{}
		s.guard.stats[node] = st
	}
	st.NACKs++
	if ignored != "" {
		st.NACKsIgnored++
	}
	if len(msg) > maxErrorDetail {
		msg = msg[:maxErrorDetail]
	}
	st.LastNACK, st.LastNACKError, st.LastNACKIgnored = &now, msg, ignored
}

// pruneStats drops the records of nodes without an open stream.
func (s *Server) pruneStats() {
	open := map[string]bool{}
	for _, c := range s.nodes.streams {
		open[c.node.ID] = true
	}
	for id := range s.guard.stats {
		if !open[id] {
			delete(s.guard.stats, id)
		}
	}
}

// nodeNACKs fills the NACK record of every listed node. Caller holds s.mu.
func (s *Server) nodeNACKs(nodes []DebugNode) []DebugNode {
	for i := range nodes {
		if st := s.guard.stats[nodes[i].ID]; st != nil {
			nodes[i].NACKStats = *st
		}
	}
	return nodes
}

// rateKey is the key of a stream's rate limit bucket. Caller holds s.mu.
func (s *Server) rateKey(ref streamRef, node string) string {
	if c := s.conns[ref]; c != nil && c.uri != "" {
		return c.uri
	}
	return "node:" + node
}

// onACK settles what an ACK of sent acknowledges, if the stream may
// answer for its group. Caller holds s.mu.
func (s *Server) onACK(ref streamRef, node *corev3.Node, typ string, sent sentVersion) {
	if reason := s.untrusted(ref, sent.gt.group); reason != "" {
		s.metrics.acksIgnored.WithLabelValues(reason).Inc()
		s.log.Warn("ACK ignored: the stream may not answer for this group", "reason", reason, "group", sent.gt.group,
			"type", typ, "node", node.GetId())
		return
	}
	for _, id := range s.acc.acked(sent.gt, sent.version) {
		s.queueStatus(tenants.Status{Tenant: id, State: tenants.StateAccepted, Revision: s.tenantRevision(id)})
		s.persistAccepted(id)
	}
}

// onNACK acts on a NACK of sent: when it is trusted and within the
// node's rate, the blamed tenants are pinned in the stream's group and
// marked rejected; otherwise it is only logged and counted. Caller
// holds s.mu.
func (s *Server) onNACK(ref streamRef, node *corev3.Node, typ string, sent sentVersion, nack *status.Status) {
	s.metrics.nacks.WithLabelValues(shortType(typ)).Inc()
	// node is the node the stream is served as: a delta stream's later
	// requests carry none (authorize, identity.go).
	msg, nodeID, now := nack.GetMessage(), node.GetId(), s.guard.now()
	ignored := s.untrusted(ref, sent.gt.group)
	// Untrusted NACKs take no tokens: they must not use up the budget of
	// the node whose id they claim.
	if ignored == "" && !s.guard.allow(s.rateKey(ref, nodeID), now) {
		ignored = ignoredRateLimited
	}
	// A storm of ignored NACKs is logged once a minute per node and
	// reason (the rest at debug level); the counters count them all.
	level := slog.LevelWarn
	if prev := s.guard.stats[nodeID]; ignored != "" && prev != nil && prev.LastNACKIgnored == ignored && now.Sub(*prev.LastNACK) < time.Minute {
		level = slog.LevelDebug
	}
	s.recordNACK(nodeID, msg, ignored, now)
	if ignored != "" {
		s.metrics.nacksIgnored.WithLabelValues(ignored).Inc()
		attrs := []any{"reason", ignored, "group", sent.gt.group, "type", typ, "node", nodeID, "error_detail", msg}
		if c := s.conns[ref]; c != nil && c.uri != "" {
			attrs = append(attrs, "identity", c.uri)
		}
		s.log.Log(context.Background(), level, "NACK ignored: it changes nothing", attrs...)
		return
	}
	blamed := s.acc.nacked(sent.gt, sent.version, msg, nodeID, s.cat)
	ids := make([]string, len(blamed))
	for i, b := range blamed {
		ids[i] = b.id
	}
	s.log.Error("proxy rejected configuration (NACK)", "group", sent.gt.group, "type", typ,
		"node", nodeID, "tenants", ids, "error_detail", msg)
	if len(blamed) == 0 {
		return
	}
	for _, b := range blamed {
		note := "; no accepted version is known: it stays served (a NACK never removes a tenant)"
		if b.to != nil {
			note = "; group " + sent.gt.group + " is rolled back to resourceVersion " + b.to.Metadata.ResourceVersion + ", the last accepted"
			s.log.Warn("rolling tenant back to its last accepted version", "tenant_id", b.id, "group", sent.gt.group,
				"rejected_revision", b.rejected.Metadata.ResourceVersion, "served_revision", b.to.Metadata.ResourceVersion)
		} else {
			s.log.Warn("tenant rejected and no accepted version is known; it stays served", "tenant_id", b.id, "group", sent.gt.group)
		}
		s.queueStatus(tenants.Status{Tenant: b.id, State: tenants.StateRejected, Revision: s.tenantRevision(b.id),
			Message: "rejected by " + nodeID + " (" + shortType(typ) + ") in group " + sent.gt.group + ": " + msg + note})
	}
	// Only the NACKing node's group changes.
	if g, ok := s.groups[sent.gt.group]; ok {
		if err := s.syncGroup(g); err != nil {
			s.log.Error("rollback not published", "group", g.key, "err", err)
		}
	}
}
