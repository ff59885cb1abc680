package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tenantmesh/tenantmesh/authz"
	"github.com/tenantmesh/tenantmesh/contract"
)

// authzPart serves envoy.service.auth.v3.Authorization on --authz-listen
// and publishes the x-tenant-context keys on the admin server.
type authzPart struct {
	grpcPart
	*authz.Server
}

func newAuthzPart(env *Env) (Part, error) {
	tls, err := grpcTLS("authz", env.Config.AuthzTLS, env)
	if err != nil {
		return nil, err
	}
	key, kid, err := authz.LoadOrCreateSigningKey(env.Config.ContextKeyFile)
	if err != nil {
		return nil, fmt.Errorf("x-tenant-context signing key: %w", err)
	}
	srv, err := authz.New(authz.Options{
		Logger:              env.Logger.With("component", "authz"),
		SigningKey:          key,
		KeyID:               kid,
		HTTPClient:          &http.Client{Timeout: 5 * time.Second},
		Registerer:          env.Registry,
		MetricsTenantLabels: env.Config.MetricsTenantLabels,
	})
	if err != nil {
		return nil, err
	}
	p := &authzPart{Server: srv}
	p.grpcPart = grpcPart{
		name:     "authz",
		addr:     env.Config.AuthzListen,
		log:      env.Logger,
		drain:    env.Config.ShutdownTimeout / 3,
		register: srv.Register,
		tls:      tls,
		reload:   env.Config.TLSReloadInterval,
		background: func(ctx context.Context) error {
			<-ctx.Done()
			srv.Close() // stop JWKS refreshes
			return nil
		},
	}
	return p, nil
}

// RegisterAdmin publishes the keys backends and sidecars verify
// x-tenant-context with.
func (p *authzPart) RegisterAdmin(mux *http.ServeMux) {
	mux.Handle(contract.JWKSPath, p.JWKSHandler())
}
