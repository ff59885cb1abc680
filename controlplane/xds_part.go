package controlplane

import (
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"

	"google.golang.org/grpc"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/xds"
)

// xdsPart serves ADS on --xds-listen.
type xdsPart struct {
	grpcPart
	*xds.Server
}

func newXDSPart(env *Env) (Part, error) {
	tls, err := grpcTLS("xds", env.Config.XDSTLS, env)
	if err != nil {
		return nil, err
	}
	cfg := env.Config
	// Under mutual TLS every client has a verified certificate: its
	// SPIFFE ID, not its node metadata, says who it is. Without client
	// certificates there is nothing to bind, and metadata decides.
	mtls := cfg.XDSTLS.Mode() == tlsconfig.ModeMTLS
	if mtls {
		warnTrustDomain(env.Logger, tls.Leaf(), cfg.XDSTrustDomain)
	}
	srv := xds.New(xds.Options{Logger: env.Logger, Registerer: env.Registry, Status: env.Store,
		RequireIdentity: mtls, TrustDomain: cfg.XDSTrustDomain,
		MaxStreamsPerIdentity: cfg.XDSMaxStreamsPerIdentity, MaxGroupsPerIdentity: cfg.XDSMaxGroupsPerIdentity})
	return &xdsPart{
		grpcPart: grpcPart{
			name:       "xds",
			addr:       env.Config.XDSListen,
			log:        env.Logger,
			drain:      env.Config.ShutdownTimeout / 3,
			register:   srv.Register,
			background: srv.Run,
			tls:        tls,
			reload:     env.Config.TLSReloadInterval,
			// A full edge configuration of thousands of tenants is large.
			opts: []grpc.ServerOption{grpc.MaxRecvMsgSize(16 << 20), grpc.MaxSendMsgSize(256 << 20)},
		},
		Server: srv,
	}, nil
}

// warnTrustDomain says when the server's own SPIFFE ID is of another
// trust domain than the one clients must be of: certificates from one CA
// share a trust domain, so every client would be refused.
func warnTrustDomain(log *slog.Logger, leaf *x509.Certificate, trustDomain string) {
	for _, u := range leaf.URIs {
		id, err := identity.ParseSPIFFE(u.String())
		if err == nil && id.TrustDomain != trustDomain {
			log.Warn("the xDS server certificate is of another trust domain than --xds-trust-domain; clients of its CA will be refused",
				"cert_uri", u.String(), "xds_trust_domain", trustDomain)
		}
	}
}

// RegisterAdmin adds /debug/xds: the node groups and what they hold.
func (p *xdsPart) RegisterAdmin(mux *http.ServeMux) {
	mux.HandleFunc("/debug/xds", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(p.Server.Debug()); err != nil {
			p.log.Warn("write /debug/xds", "err", err)
		}
	})
}
