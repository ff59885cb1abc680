// Package xds serves the translated tenant configuration to Envoy (and to
// proxyless gRPC and envoyproxy/ratelimit) over ADS, state-of-the-world and
// delta. It owns versions, per-node-group caches, first-sync gating and
// NACK handling; the translation itself is the pure package xds/translate.
package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// StatusWriter records a tenant's accepted/rejected state (status/<tenant>).
type StatusWriter interface {
	WriteStatus(ctx context.Context, st tenants.Status) error
}

// Options configure a Server.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics registered
	Status     StatusWriter          // nil: status is only logged

	// RequireIdentity makes the identity, not the node metadata, decide
	// who a node is: every stream must carry a verified SPIFFE ID of
	// TrustDomain (internal/identity: the gRPC server verifies client
	// certificates, mutual TLS), its kind fixes the node's role, tenant
	// and service, metadata that disagrees is refused, and each identity's
	// streams and node groups are bounded. Off, metadata decides (plaintext
	// on loopback, TLS without client certificates).
	RequireIdentity bool
	// TrustDomain of the accepted identities (default
	// identity.DefaultTrustDomain).
	TrustDomain string
	// MaxStreamsPerIdentity and MaxGroupsPerIdentity bound the open
	// streams of one identity and the distinct node groups they are in
	// (defaults DefaultMaxStreamsPerIdentity, DefaultMaxGroupsPerIdentity).
	MaxStreamsPerIdentity int
	MaxGroupsPerIdentity  int
}

// Server is the xDS management server.
type Server struct {
	log     *slog.Logger
	status  StatusWriter
	metrics *metrics
	xds     serverv3.Server

	identityRejections *prometheus.CounterVec
	requireIdentity    bool
	trustDomain        string
	maxStreams         int
	maxGroups          int

	ready     chan struct{}
	readyOnce sync.Once
	statusQ   chan tenants.Status

	mu      sync.Mutex
	cat     *tenants.Catalog
	mux     *muxCache
	groups  map[string]*group
	streams map[streamRef]string // stream → group key
	members map[string]int       // group key → open streams
	nodes   *nodeTable           // stream → the client behind it
	conns   map[streamRef]*streamConn
	idents  map[string]*identityUse // SPIFFE ID → what its streams hold
	acc     *acceptance
	prefix  string // version prefix: the etcd revision this process started from
}

type streamRef struct {
	delta bool
	id    int64
}

// New creates a Server. It serves nothing until the first Update.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TrustDomain == "" {
		opts.TrustDomain = identity.DefaultTrustDomain
	}
	if opts.MaxStreamsPerIdentity <= 0 {
		opts.MaxStreamsPerIdentity = DefaultMaxStreamsPerIdentity
	}
	if opts.MaxGroupsPerIdentity <= 0 {
		opts.MaxGroupsPerIdentity = DefaultMaxGroupsPerIdentity
	}
	s := &Server{
		log:                opts.Logger.With("component", "xds"),
		status:             opts.Status,
		metrics:            newMetrics(opts.Registerer),
		identityRejections: newIdentityRejections(opts.Registerer),
		requireIdentity:    opts.RequireIdentity,
		trustDomain:        opts.TrustDomain,
		maxStreams:         opts.MaxStreamsPerIdentity,
		maxGroups:          opts.MaxGroupsPerIdentity,
		ready:              make(chan struct{}),
		statusQ:            make(chan tenants.Status, 1024),
		groups:             map[string]*group{},
		streams:            map[streamRef]string{},
		members:            map[string]int{},
		nodes:              newNodeTable(),
		conns:              map[streamRef]*streamConn{},
		idents:             map[string]*identityUse{},
		acc:                newAcceptance(),
	}
	s.mux = &muxCache{groups: map[string]*groupCache{}}
	s.xds = serverv3.NewServer(context.Background(), s.mux, s.callbacks())
	return s
}

// Register adds ADS (SotW and delta) and the per-type discovery services
// to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
}

// Ready is nil once the first complete configuration is in the caches.
func (s *Server) Ready() error {
	select {
	case <-s.ready:
		return nil
	default:
		return errors.New("waiting for the first complete configuration from etcd")
	}
}

// Run writes tenant status records until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case st := <-s.statusQ:
			if s.status == nil {
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.status.WriteStatus(wctx, st); err != nil {
				s.log.Warn("write tenant status", "tenant_id", st.Tenant, "state", st.State, "err", err)
			}
			cancel()
		}
	}
}

// Update implements the store's catalog sink: it brings every group to
// cat, re-translating only the tenants that changed.
func (s *Server) Update(cat *tenants.Catalog) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cat == nil {
		s.prefix = strconv.FormatInt(cat.Revision(), 10) + "."
		node := translate.Node{ID: "edge", Role: translate.RoleEdge}
		s.groups[edgeGroup] = newGroup(edgeGroup, node, s.prefix)
		s.mux.rateLimit = cachev3.NewLinearCache(RateLimitConfigType, cachev3.WithVersionPrefix(s.prefix))
		s.mux.setGroup(edgeGroup, s.groups[edgeGroup].cache)
	}
	s.cat = cat
	s.acc.forget(cat)
	if err := s.syncAll(); err != nil {
		return // not ready, or still serving the last good configuration
	}
	s.metrics.revision.Set(float64(cat.Revision()))
	s.metrics.translate.Observe(time.Since(start).Seconds())
	s.readyOnce.Do(func() { close(s.ready) })
}

// syncAll brings every group to s.cat. Caller holds s.mu.
func (s *Server) syncAll() error {
	var errs []error
	for _, g := range s.groups {
		errs = append(errs, s.syncGroup(g))
	}
	return errors.Join(errs...)
}

// syncGroup brings one group to s.cat; an error means nothing was
// published for it (tenant errors are not: those tenants keep their last
// good configuration and the rest is published).
func (s *Server) syncGroup(g *group) error {
	cs, terrs, err := g.sync(s.cat, s.acc.effective)
	for id, terr := range terrs {
		s.metrics.tenantErrors.Inc()
		s.log.Error("tenant translation failed; keeping its last good configuration", "tenant_id", id, "group", g.key, "err", terr)
		s.queueStatus(tenants.Status{Tenant: id, State: tenants.StateRejected, Revision: s.tenantRevision(id), Message: "translation: " + terr.Error()})
	}
	if err != nil {
		// A shared resource failed: keep serving what the caches hold.
		s.metrics.syncErrors.Inc()
		s.log.Error("configuration not published", "group", g.key, "revision", s.cat.Revision(), "err", err)
		return err
	}
	if !cs.empty() {
		s.publish(g, cs)
	}
	return nil
}

// publish applies a change set, clusters and endpoints first, so a route
// never points at a cluster the proxy has not been sent.
func (s *Server) publish(g *group, cs *changeSet) {
	for _, typ := range resourceTypes {
		if len(cs.upserts[typ]) == 0 && len(cs.deletes[typ]) == 0 {
			continue
		}
		if err := g.cache.update(typ, cs.upserts[typ], cs.deletes[typ]); err != nil {
			s.log.Error("update cache", "group", g.key, "type", typ, "err", err)
			continue
		}
		s.acc.versions[groupType{g.key, typ}]++
		s.metrics.pushes.WithLabelValues(shortType(typ)).Inc()
	}
	if len(cs.upserts[RateLimitConfigType]) > 0 || len(cs.deletes[RateLimitConfigType]) > 0 {
		if err := update(s.mux.rateLimit, cs.upserts[RateLimitConfigType], cs.deletes[RateLimitConfigType]); err != nil {
			s.log.Error("update rate limit config cache", "err", err)
		} else {
			s.metrics.pushes.WithLabelValues("rls").Inc()
		}
	}
	s.acc.published(g.key, cs, s.cat)
}

func (s *Server) queueStatus(st tenants.Status) {
	st.Time = time.Now().UTC()
	select {
	case s.statusQ <- st:
	default:
		s.log.Warn("status queue full; dropping status", "tenant_id", st.Tenant, "state", st.State)
	}
}

// ensureGroup registers a stream's node and builds its group on first use.
// Caller holds s.mu.
func (s *Server) ensureGroup(ref streamRef, n translate.Node) error {
	if _, ok := s.streams[ref]; ok {
		return nil
	}
	key := groupKey(n)
	g, ok := s.groups[key]
	if !ok {
		if s.cat == nil {
			return errors.New("no configuration yet")
		}
		g = newGroup(key, n, s.prefix)
		s.groups[key] = g
		s.mux.setGroup(key, g.cache)
		if err := s.syncGroup(g); err != nil {
			// No stream joins it: left behind, every bad node (a sidecar
			// with an invalid appPort) would add a group synced on every
			// change, forever.
			delete(s.groups, key)
			s.mux.setGroup(key, nil)
			return fmt.Errorf("build configuration for group %s: %w", key, err)
		}
		s.log.Info("node group created", "group", key, "node", n.ID)
	}
	s.streams[ref] = key
	s.members[key]++
	s.metrics.streams.Inc()
	return nil
}

// dropStream forgets a closed stream and evicts its group's state when it
// was the last member (the edge group stays: it feeds the rate limit config).
func (s *Server) dropStream(ref streamRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeStream(ref)
	key, ok := s.streams[ref]
	if !ok {
		return
	}
	s.unregisterNode(ref)
	delete(s.streams, ref)
	s.metrics.streams.Dec()
	s.members[key]--
	if s.members[key] > 0 || key == edgeGroup {
		return
	}
	delete(s.members, key)
	delete(s.groups, key)
	s.mux.setGroup(key, nil)
	s.log.Info("node group evicted: no streams left", "group", key)
}

// waitReady blocks a new stream until the first full configuration exists:
// an empty first response would make a restarted Envoy drop every route.
func (s *Server) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stream closed before the first configuration was ready: %w", ctx.Err())
	}
}

// DebugInfo is the /debug/xds view of the server.
type DebugInfo struct {
	Revision int64                 `json:"revision"`
	Groups   map[string]DebugGroup `json:"groups"`
	Pending  []string              `json:"pendingTenants"`
	Rejected map[string]string     `json:"rejectedTenants"`
	// MinEnvoyVersion is the oldest Envoy the configuration works with;
	// Nodes flags connected Envoys older than it.
	MinEnvoyVersion string      `json:"minEnvoyVersion"`
	Nodes           []DebugNode `json:"nodes"`
}

// DebugGroup summarises one node group.
type DebugGroup struct {
	Streams   int            `json:"streams"`
	Resources map[string]int `json:"resources"`
}

// Debug returns a snapshot of the groups, their resource counts, the
// connected nodes and the tenants waiting for or refused acknowledgement.
func (s *Server) Debug() DebugInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := DebugInfo{Groups: map[string]DebugGroup{}, Rejected: map[string]string{},
		MinEnvoyVersion: MinEnvoyVersion.String(), Nodes: s.debugNodes()}
	if s.cat != nil {
		d.Revision = s.cat.Revision()
	}
	for key, g := range s.groups {
		dg := DebugGroup{Streams: s.members[key], Resources: map[string]int{}}
		for typ, m := range g.published {
			dg.Resources[shortType(typ)] = len(m)
		}
		d.Groups[key] = dg
	}
	for id := range s.acc.pending {
		d.Pending = append(d.Pending, id)
	}
	for id, r := range s.acc.rejected {
		d.Rejected[id] = r.reason
	}
	return d
}
