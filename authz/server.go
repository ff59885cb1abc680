// Package authz is the tenantmesh ext_authz service
// (envoy.service.auth.v3.Authorization): for every request Envoy forwards
// it resolves the caller's tenant from a JWT or an API key, checks it
// against the route's tenant (context_extensions), the tenant's state and
// the route's rules, and either allows with verified tenant headers
// (x-tenant-id, x-tenant-tier and a signed x-tenant-context) or denies
// with a localized JSON error. The contract is
// docs/architecture.md#ext_authz-contract.
package authz

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tenantmesh/tenantmesh/authz/jwks"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// Options configure a Server.
type Options struct {
	// Logger receives decision and JWKS logs [slog.Default()].
	Logger *slog.Logger
	// SigningKey signs x-tenant-context; nil generates one (with a warning:
	// replicas then publish different keys).
	SigningKey ed25519.PrivateKey
	// KeyID is the kid of SigningKey [its RFC 7638 thumbprint].
	KeyID string
	// HTTPClient fetches JWKS URIs [a client with a 5 s timeout]. It is
	// used without following redirects, and with jwks.NewTransport (which
	// refuses link-local and metadata addresses) when its Transport is nil.
	HTTPClient *http.Client
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// MetricsTenantLabels adds a tenant label to the decision counter.
	MetricsTenantLabels bool
	// Now is the clock (tests) [time.Now].
	Now func() time.Time
	// DecisionCacheSize bounds the decision cache [DefaultDecisionCacheSize];
	// negative disables it.
	DecisionCacheSize int
	// JWKS tunes remote key sets (refresh, refetch window, limits); its
	// Client, OnFetch, Logger and Now are filled in from the fields above.
	JWKS jwks.Options
}

// Compile-time check that Server is what Envoy calls.
var _ authv3.AuthorizationServer = (*Server)(nil)

// Server is the ext_authz service. Check is safe for concurrent use and
// never blocks on Update, which swaps the catalog atomically.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	log     *slog.Logger
	now     func() time.Time
	signer  *contextSigner
	cache   *decisionCache
	metrics *metrics
	iopts   *issuerOptions
	jwksOpt jwks.Options

	idx atomic.Pointer[index]

	mu      sync.Mutex // serializes Update and guards remotes
	remotes map[string]*jwks.Remote
	closed  bool
}

// New builds a Server; it answers not_ready (503) until the first Update.
func New(opts Options) (*Server, error) {
	s := &Server{
		log:     opts.Logger,
		now:     opts.Now,
		cache:   newDecisionCache(opts.DecisionCacheSize),
		remotes: map[string]*jwks.Remote{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.iopts = &issuerOptions{now: s.now}
	key := opts.SigningKey
	if key == nil {
		var err error
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("generate context signing key: %w", err)
		}
		s.log.Warn("no x-tenant-context signing key configured; generated one — replicas will publish different keys")
	}
	signer, err := newContextSigner(key, opts.KeyID)
	if err != nil {
		return nil, err
	}
	s.signer = signer
	if s.metrics, err = newMetrics(opts.Registerer, opts.MetricsTenantLabels); err != nil {
		return nil, err
	}
	s.jwksOpt = opts.JWKS
	s.jwksOpt.Client = opts.HTTPClient
	s.jwksOpt.OnFetch = s.metrics.jwksFetch
	s.jwksOpt.Logger = s.log
	if s.jwksOpt.Now == nil {
		s.jwksOpt.Now = s.now
	}
	return s, nil
}

// Register serves the Authorization service on g.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// JWKSHandler serves the public key of x-tenant-context as a JWK Set
// (mounted at contract.JWKSPath).
func (s *Server) JWKSHandler() http.Handler { return s.signer }

// errNotReady is what Ready reports before the first catalog.
var errNotReady = errors.New("authz: no tenant catalog received yet")

// Ready reports nil once a catalog was received.
func (s *Server) Ready() error {
	if s.idx.Load() == nil {
		return errNotReady
	}
	return nil
}

// Update publishes a new catalog. Derived state (compiled schemas, JWT
// parsers, key sets) is rebuilt only for tenants that changed; in-flight
// checks finish on the catalog they started with.
func (s *Server) Update(cat *tenants.Catalog) {
	if cat == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := buildIndex(cat, s.idx.Load(), s, s.iopts, s.log)
	s.idx.Store(next)
	if s.cache != nil {
		s.cache.purge()
	}
	if !next.remotesChanged {
		return // no JWKS URI can have fallen out of use
	}
	used := next.remoteURIs()
	for uri, r := range s.remotes {
		if !used[uri] {
			r.Close()
			delete(s.remotes, uri)
		}
	}
}

// remote implements keySources: one Remote per URI, shared by every
// issuer that names it and kept across updates while any does. Called
// with s.mu held (from Update).
func (s *Server) remote(uri string) jwks.Source {
	if r, ok := s.remotes[uri]; ok {
		return r
	}
	r := jwks.NewRemote(uri, s.jwksOpt)
	if s.closed {
		r.Close()
	}
	s.remotes[uri] = r
	return r
}

// Close stops the background JWKS refreshes.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for uri, r := range s.remotes {
		r.Close()
		delete(s.remotes, uri)
	}
}

// Check implements authv3.AuthorizationServer. It never returns an error:
// every denial is a CheckResponse with an HTTP status and a JSON body.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	r := readRequest(req)
	d := s.decide(ctx, r)
	var resp *authv3.CheckResponse
	if d.reason == ReasonOK {
		resp = allowResponse(d.tenant, d.contextToken)
	} else {
		resp = denyResponse(d.reason, d.locale())
	}
	s.metrics.duration.Observe(time.Since(start).Seconds())
	s.metrics.decision(d.reason, r.routeTenant)
	s.logDecision(ctx, r, d)
	return resp, nil
}

// logDecision logs denials at info and allows at debug, each with the
// tenant, route and reason; the logger is only built when it will log.
func (s *Server) logDecision(ctx context.Context, r *request, d *decision) {
	level := slog.LevelInfo
	if d.reason == ReasonOK {
		level = slog.LevelDebug
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	log := s.log.With("tenant_id", r.routeTenant, "route", r.route, "reason", string(d.reason))
	attrs := []slog.Attr{slog.String("request_id", r.requestID)}
	if d.p != nil {
		attrs = append(attrs, slog.String("claimed_tenant", d.p.tenant), slog.String("sub", d.p.subject))
	}
	if d.err != nil {
		attrs = append(attrs, slog.String("error", d.err.Error()))
	}
	msg := "authz allow"
	if d.reason != ReasonOK {
		msg = "authz deny"
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}
