package controlplane

import (
	"encoding/json"
	"net/http"

	"google.golang.org/grpc"

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
	srv := xds.New(xds.Options{Logger: env.Logger, Registerer: env.Registry, Status: env.Store,
		// Under mTLS only a node of the role whose resources it answers
		// may pin or accept them (docs/xds.md, NACKs).
		NACK:     xds.NACKOptions{RequireIdentity: env.Config.XDSTLS.Mode() == tlsconfig.ModeMTLS},
		Accepted: env.Store,
	})
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

// RegisterAdmin adds /debug/xds: the node groups and what they hold.
func (p *xdsPart) RegisterAdmin(mux *http.ServeMux) {
	mux.HandleFunc("/debug/xds", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(p.Server.Debug()); err != nil {
			p.log.Warn("write /debug/xds", "err", err)
		}
	})
}
