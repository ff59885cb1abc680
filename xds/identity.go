package xds

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/internal/identity"
)

// Defaults of the per-identity bounds. Replicas usually share one
// certificate (every edge of a Deployment, every pod of a tenant service
// with a cert-manager Secret), and each opens one ADS stream, so the
// stream bound is the replica count one certificate may serve. Groups
// differ by app port (sidecar) or by app address (grpc-server: one group
// per replica), so the group bound is that of a grpc-server's replicas.
const (
	DefaultMaxStreamsPerIdentity = 128
	DefaultMaxGroupsPerIdentity  = 32
)

// Reasons of tenantmesh_xds_identity_rejections_total.
const (
	rejectNoIdentity      = "no_identity"  // no verified SPIFFE ID of the scheme
	rejectTrustDomain     = "trust_domain" // an ID of another trust domain
	rejectKind            = "kind"         // an ID no xDS client may hold (the control plane's)
	rejectRole            = "role"         // metadata role the identity may not take
	rejectTenant          = "tenant"       // metadata tenant other than the identity's
	rejectService         = "service"      // metadata service other than the identity's
	rejectType            = "type"         // a resource type the identity may not receive
	rejectNodeChanged     = "node_changed" // a later request moved the stream to another group
	rejectStreamsPerIdent = "streams_per_identity"
	rejectGroupsPerIdent  = "groups_per_identity"
)

// streamConn is what the server knows of one open stream besides its
// group membership. Guarded by Server.mu.
type streamConn struct {
	// id and uri are the verified peer identity; uri is "" without one
	// (identity not required).
	id  identity.ID
	uri string
	// defaultType is the type of a per-type (non-ADS) stream, "" for ADS.
	defaultType string
	// raw is the node as the client last sent it and node the node the
	// stream is served as (raw completed from the identity). A delta
	// stream carries its node on the first request only (Envoy's
	// ApiConfigSource.set_node_on_first_message_only,
	// api/envoy/config/core/v3/config_source.proto, which delta honours
	// since 1.38.0, changelogs/1.38.0.yaml): later requests are served as
	// node.
	raw, node *corev3.Node
	// group is the stream's group once its first request was admitted.
	group string
}

// identityUse is what the open streams of one identity hold.
type identityUse struct {
	streams int
	groups  map[string]int // group key → streams of the identity in it
}

func newIdentityRejections(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tenantmesh_xds_identity_rejections_total",
		Help: "xDS streams refused because of the client's identity (certificate) or the bounds per identity, by reason."},
		[]string{"reason"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// reject counts and logs a refused stream and returns the error that
// closes it with code (go-control-plane returns a callback's error from
// the stream handler; grpc-go sends its status).
func (s *Server) reject(code codes.Code, reason string, c *streamConn, nodeID string, format string, args ...any) error {
	s.identityRejections.WithLabelValues(reason).Inc()
	msg := fmt.Sprintf(format, args...)
	attrs := []any{"reason", reason, "node", nodeID, "identity", c.uri}
	if c.id.Tenant != "" {
		attrs = append(attrs, "tenant_id", c.id.Tenant)
	}
	s.log.Warn("xDS stream refused: "+msg, attrs...)
	return status.Error(code, msg)
}

// openStream registers a new stream. With identities required it reads
// the verified SPIFFE ID of the peer and refuses one of another trust
// domain or kind, or one over its stream bound.
func (s *Server) openStream(ctx context.Context, ref streamRef, defaultType string) error {
	c := &streamConn{defaultType: defaultType}
	if s.requireIdentity {
		id, err := identity.Peer(ctx)
		if err != nil {
			// The handshake (RequireAndVerifyClientCert) refuses clients
			// without a certificate of the CA; this refuses a certificate
			// of the CA that carries no ID of the scheme, and anything the
			// transport let through without one.
			return s.reject(codes.PermissionDenied, rejectNoIdentity, c, "", "a client certificate with a tenantmesh SPIFFE ID is required: %v", err)
		}
		c.id, c.uri = id, id.String()
		if id.TrustDomain != s.trustDomain {
			return s.reject(codes.PermissionDenied, rejectTrustDomain, c, "", "identity %s is not of trust domain %q", c.uri, s.trustDomain)
		}
		if !slices.Contains([]identity.Kind{identity.KindEdge, identity.KindService, identity.KindGRPC, identity.KindRatelimit}, id.Kind) {
			return s.reject(codes.PermissionDenied, rejectKind, c, "", "identity %s (kind %s) is not an xDS client", c.uri, id.Kind)
		}
	}
	s.mu.Lock()
	if c.uri != "" {
		u := s.idents[c.uri]
		if u == nil {
			u = &identityUse{groups: map[string]int{}}
			s.idents[c.uri] = u
		}
		if n := u.streams; n >= s.maxStreams {
			s.mu.Unlock()
			return s.reject(codes.ResourceExhausted, rejectStreamsPerIdent, c, "",
				"identity %s already has %d open xDS streams (the bound per identity, --xds-max-streams-per-identity)", c.uri, n)
		}
		u.streams++
	}
	s.conns[ref] = c
	s.mu.Unlock()
	return s.waitReady(ctx)
}

// closeStream forgets a stream's identity state. Caller holds s.mu.
func (s *Server) closeStream(ref streamRef) {
	c, ok := s.conns[ref]
	if !ok {
		return
	}
	delete(s.conns, ref)
	u := s.idents[c.uri]
	if c.uri == "" || u == nil {
		return
	}
	if c.group != "" {
		if u.groups[c.group]--; u.groups[c.group] <= 0 {
			delete(u.groups, c.group)
		}
	}
	if u.streams--; u.streams <= 0 {
		delete(s.idents, c.uri)
	}
}

// authorize returns the node a request is served as: the node it carries
// (or the stream's, when it carries none, as a delta stream's later
// requests do), completed from the identity and checked against it; a
// node that would move the stream to another group, and a type the
// identity may not receive, are refused. Caller holds s.mu.
func (s *Server) authorize(c *streamConn, raw *corev3.Node, typ string) (*corev3.Node, error) {
	node := c.node
	if raw != nil && (raw != c.raw || node == nil) {
		node = raw
		if c.uri != "" {
			var err error
			if node, err = s.bindNode(c, raw); err != nil {
				return nil, err
			}
		}
		// A later request naming another group would have its watches
		// served from that group's caches while the stream counts in its
		// own (and, with identities, escape the group bound).
		if key := groupKeyOf(node); c.group != "" && key != c.group {
			return nil, s.reject(codes.PermissionDenied, rejectNodeChanged, c, raw.GetId(),
				"node %q changed its group from %s to %s on an open stream", raw.GetId(), c.group, key)
		}
		c.raw, c.node = raw, node
	}
	if node == nil {
		// The first request carries no node: a node of the identity alone
		// (without identity, NodeFromProto's edge, as before).
		node = &corev3.Node{}
		if c.uri != "" {
			var err error
			if node, err = s.bindNode(c, node); err != nil {
				return nil, err
			}
		}
		c.node = node
	}
	if c.uri != "" {
		if typ == "" {
			typ = c.defaultType
		}
		if !typeAllowed(c.id.Kind, typ) {
			return nil, s.reject(codes.PermissionDenied, rejectType, c, node.GetId(),
				"identity %s may not subscribe to %s", c.uri, typ)
		}
	}
	return node, nil
}

// typeAllowed: envoyproxy/ratelimit asks for nothing but the
// RateLimitConfig, with a bare node id on every request
// (envoyproxy/ratelimit src/provider/xds_grpc_sotw_provider.go,
// initializeAndWatch, ack, nack), so it receives nothing else; and
// only it and the edges (which are served every tenant's configuration
// anyway) may read it: it holds every tenant's global limits.
func typeAllowed(k identity.Kind, typ string) bool {
	switch k {
	case identity.KindRatelimit:
		return typ == RateLimitConfigType
	case identity.KindEdge:
		return true
	default:
		return typ != RateLimitConfigType
	}
}

// errMetadata marks a node whose metadata disagrees with its identity.
var errMetadata = errors.New("node metadata disagrees with the client certificate")

// bindNode checks a node's role, tenant and service metadata against the
// stream's identity and fills in what the node left out, so that the
// identity, not the metadata, decides the node's group:
//
//	edge/<name>                       role edge (or none)
//	tenant/<t>/service/<s>            role sidecar (the default) or grpc-server, tenant t, service s
//	grpc/<name>                       role grpc (filled in when absent)
//	ratelimit/<name>                  no role (envoyproxy/ratelimit sends none), RateLimitConfig only
//
// Only a service identity may name a tenant or a service. The node is
// cloned before it is completed: the server keeps the client's. Caller
// holds s.mu.
func (s *Server) bindNode(c *streamConn, raw *corev3.Node) (*corev3.Node, error) {
	f := raw.GetMetadata().GetFields()
	role := contract.Role(f[contract.NodeMetaRole].GetStringValue())
	tenant, service := f[contract.NodeMetaTenant].GetStringValue(), f[contract.NodeMetaService].GetStringValue()
	var roles []contract.Role
	wantTenant, wantService := "", ""
	switch c.id.Kind {
	case identity.KindEdge:
		roles = []contract.Role{contract.RoleEdge}
	case identity.KindService:
		roles = []contract.Role{contract.RoleSidecar, contract.RoleGRPCServer}
		wantTenant, wantService = c.id.Tenant, c.id.Service
	case identity.KindGRPC:
		roles = []contract.Role{contract.RoleGRPC}
	}
	fill := map[string]string{}
	switch {
	case role == "" && len(roles) > 0:
		fill[contract.NodeMetaRole] = string(roles[0])
	case role != "" && !slices.Contains(roles, role):
		return nil, s.reject(codes.PermissionDenied, rejectRole, c, raw.GetId(), "node %q: %v: role %q, but identity %s may only be %s",
			raw.GetId(), errMetadata, role, c.uri, rolesText(roles))
	}
	for _, m := range []struct{ key, got, want, reason string }{
		{contract.NodeMetaTenant, tenant, wantTenant, rejectTenant},
		{contract.NodeMetaService, service, wantService, rejectService},
	} {
		switch {
		case m.got == m.want:
		case m.got == "":
			fill[m.key] = m.want
		default:
			return nil, s.reject(codes.PermissionDenied, m.reason, c, raw.GetId(), "node %q: %v: %s %q, but identity %s is %s",
				raw.GetId(), errMetadata, m.key, m.got, c.uri, orNone(m.want))
		}
	}
	if len(fill) == 0 {
		return raw, nil
	}
	n := proto.Clone(raw).(*corev3.Node)
	if n.Metadata == nil {
		n.Metadata = &structpb.Struct{}
	}
	if n.Metadata.Fields == nil {
		n.Metadata.Fields = map[string]*structpb.Value{}
	}
	for k, v := range fill {
		n.Metadata.Fields[k] = structpb.NewStringValue(v)
	}
	return n, nil
}

func rolesText(roles []contract.Role) string {
	if len(roles) == 0 {
		return "without a role"
	}
	out := "role " + string(roles[0])
	for _, r := range roles[1:] {
		out += " or " + string(r)
	}
	return out
}

func orNone(v string) string {
	if v == "" {
		return "of none"
	}
	return fmt.Sprintf("%q", v)
}

// admitGroup refuses a stream's first request when it would take its
// identity over the group bound. Caller holds s.mu.
func (s *Server) admitGroup(c *streamConn, key, nodeID string) error {
	u := s.idents[c.uri]
	if c.uri == "" || u == nil || u.groups[key] > 0 || len(u.groups) < s.maxGroups {
		return nil
	}
	return s.reject(codes.ResourceExhausted, rejectGroupsPerIdent, c, nodeID,
		"identity %s already has streams in %d node groups (the bound per identity, --xds-max-groups-per-identity); %s would be one more",
		c.uri, len(u.groups), key)
}

// joinedGroup records that a stream of c's identity is in group key.
// Caller holds s.mu.
func (s *Server) joinedGroup(c *streamConn, key string) {
	c.group = key
	if u := s.idents[c.uri]; c.uri != "" && u != nil {
		u.groups[key]++
	}
}
