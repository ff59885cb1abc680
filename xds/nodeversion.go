package xds

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// EnvoyVersion is an Envoy release number, major.minor.patch.
type EnvoyVersion struct{ Major, Minor, Patch uint32 }

// MinEnvoyVersion is the oldest Envoy that accepts and correctly applies
// everything this server generates. What needs it, and what an older Envoy
// does instead, is in docs/xds.md "Minimum Envoy version":
//   - edge-routes' vhds.config_source {ads: {}} is accepted only since
//     envoyproxy/envoy#42812 (source/common/router/vhds.cc,
//     VhdsSubscription::createVhdsSubscription); older Envoys NACK
//     edge-routes with "vhds: only 'DELTA_GRPC' is supported as an
//     api_type". The PR has no changelog entry: 1.38.0 is assumed, and
//     whether 1.37.0 (tagged 8 days after its approval) has it is not
//     established, so the floor errs on the late side.
//   - RouteConfiguration.vhost_header appeared in 1.37.0
//     (changelogs/1.37.0.yaml, area http).
//
// It is the floor the server warns about, not the version it is built
// against (go-control-plane's Envoy API is v1.40.0, as are the images).
var MinEnvoyVersion = EnvoyVersion{1, 38, 0}

func (v EnvoyVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less reports whether v is an older release than o.
func (v EnvoyVersion) Less(o EnvoyVersion) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// ParseEnvoyVersion reads "1.40.0", "v1.40.0" or "1.40" (patch 0); a
// suffix after the numbers ("1.40.0-dev", "1.40-latest") is ignored.
func ParseEnvoyVersion(s string) (EnvoyVersion, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return EnvoyVersion{}, false
	}
	var n [3]uint32
	for i, p := range parts {
		x, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return EnvoyVersion{}, false
		}
		n[i] = uint32(x)
	}
	return EnvoyVersion{n[0], n[1], n[2]}, true
}

// envoyUserAgent is the user_agent_name Envoy puts in its node unless the
// bootstrap overrides it, together with user_agent_build_version = its own
// release (source/server/server.cc, InstanceBase::initializeOrThrow).
// grpc-go says "gRPC Go" (internal/xds/bootstrap); envoyproxy/ratelimit and
// tenantmesh's own adsclient say nothing.
const envoyUserAgent = "envoy"

// nodeClient is what a stream's node says about the program behind it.
type nodeClient struct {
	node         translate.Node
	identity     string // the verified SPIFFE ID, "" when identities are not required
	cluster      string
	client       string // user_agent_name, "" when the client sent none
	version      string // the client's version as it reported it, "" if none
	envoy        bool
	incompatible bool // an Envoy older than MinEnvoyVersion
}

// classifyNode reads a node's user agent. Only a node that says it is
// Envoy and reports a release older than min is incompatible: other
// clients (proxyless gRPC, the rate limit service) do not run the Envoy
// configuration, and an Envoy whose version cannot be read is not blamed.
func classifyNode(n *corev3.Node, min EnvoyVersion) nodeClient {
	c := nodeClient{node: translate.NodeFromProto(n), cluster: n.GetCluster(), client: n.GetUserAgentName()}
	var v EnvoyVersion
	ok := false
	if sv := n.GetUserAgentBuildVersion().GetVersion(); sv != nil {
		v, ok = EnvoyVersion{sv.GetMajorNumber(), sv.GetMinorNumber(), sv.GetPatch()}, true
		c.version = v.String()
	} else if s := n.GetUserAgentVersion(); s != "" {
		c.version = s
		v, ok = ParseEnvoyVersion(s)
	}
	c.envoy = strings.EqualFold(c.client, envoyUserAgent)
	c.incompatible = c.envoy && ok && v.Less(min)
	return c
}

// nodeKey identifies one client in /debug/xds: streams of the same node id
// from the same program and version, with the same identity, are one entry.
type nodeKey struct{ id, client, version, identity string }

// nodeTable tracks the client behind every open stream. It is guarded by
// Server.mu.
type nodeTable struct {
	streams      map[streamRef]nodeClient
	incompatible map[string]int // node id → open streams of an incompatible Envoy
}

func newNodeTable() *nodeTable {
	return &nodeTable{streams: map[streamRef]nodeClient{}, incompatible: map[string]int{}}
}

// add records a stream's client; it reports whether the node id became an
// incompatible node (its first such stream).
func (t *nodeTable) add(ref streamRef, c nodeClient) bool {
	t.streams[ref] = c
	if !c.incompatible {
		return false
	}
	t.incompatible[c.node.ID]++
	return t.incompatible[c.node.ID] == 1
}

// remove forgets a closed stream.
func (t *nodeTable) remove(ref streamRef) {
	c, ok := t.streams[ref]
	if !ok {
		return
	}
	delete(t.streams, ref)
	if !c.incompatible {
		return
	}
	if t.incompatible[c.node.ID]--; t.incompatible[c.node.ID] <= 0 {
		delete(t.incompatible, c.node.ID)
	}
}

// DebugNode is one connected client in /debug/xds.
type DebugNode struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster,omitempty"`
	Role    string `json:"role"`
	Tenant  string `json:"tenant,omitempty"`
	Service string `json:"service,omitempty"`
	Group   string `json:"group"`
	// Identity is the SPIFFE ID of the node's verified client
	// certificate, which decided its role, tenant and service; "" when
	// the server does not require identities (metadata decides).
	Identity string `json:"identity"`
	// Client is the node's user_agent_name ("envoy", "gRPC Go"); empty
	// when it sent none.
	Client string `json:"client,omitempty"`
	// Version is the client's own version as reported in the node.
	Version string `json:"version,omitempty"`
	// Incompatible marks an Envoy older than the minimum version.
	Incompatible bool `json:"incompatible"`
	Streams      int  `json:"streams"`
}

// debugNodes lists the connected clients, sorted by id. Caller holds s.mu.
func (s *Server) debugNodes() []DebugNode {
	byKey := map[nodeKey]*DebugNode{}
	for ref, c := range s.nodes.streams {
		k := nodeKey{c.node.ID, c.client, c.version, c.identity}
		d := byKey[k]
		if d == nil {
			d = &DebugNode{ID: c.node.ID, Cluster: c.cluster, Role: string(c.node.Role), Tenant: c.node.Tenant,
				Service: c.node.Service, Group: s.streams[ref], Identity: c.identity, Client: c.client, Version: c.version,
				Incompatible: c.incompatible}
			byKey[k] = d
		}
		d.Streams++
	}
	out := make([]DebugNode, 0, len(byKey))
	for _, d := range byKey {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Client != b.Client {
			return a.Client < b.Client
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Identity < b.Identity
	})
	return out
}

// registerNode records the client of a stream that was just added to its
// group (n is the node it is served as, spiffeID its identity), warns about an Envoy older than MinEnvoyVersion and updates
// tenantmesh_xds_incompatible_nodes. It runs on the stream's first
// request: that is where the node is, and with set_node_on_first_message_only
// (which delta xDS honours since Envoy 1.38.0, changelogs/1.38.0.yaml,
// area config) the only place. Caller holds s.mu.
func (s *Server) registerNode(ref streamRef, n *corev3.Node, spiffeID string) {
	c := classifyNode(n, MinEnvoyVersion)
	c.identity = spiffeID
	if s.nodes.add(ref, c) {
		s.metrics.incompatibleNodes.Set(float64(len(s.nodes.incompatible)))
	}
	if !c.incompatible {
		return
	}
	attrs := []any{"node", c.node.ID, "role", string(c.node.Role), "group", s.streams[ref],
		"envoy_version", c.version, "min_envoy_version", MinEnvoyVersion.String()}
	if c.node.Tenant != "" {
		attrs = append(attrs, "tenant_id", c.node.Tenant)
	}
	s.log.Warn("Envoy older than the minimum supported version connected; it will reject or misapply parts of the configuration (docs/xds.md, Minimum Envoy version)", attrs...)
}

// unregisterNode forgets a closed stream's client. Caller holds s.mu.
func (s *Server) unregisterNode(ref streamRef) {
	s.nodes.remove(ref)
	s.metrics.incompatibleNodes.Set(float64(len(s.nodes.incompatible)))
}
