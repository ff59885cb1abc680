package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
)

// grpcPart runs a gRPC server for a part (xDS, ext_authz) on its own
// listener and drains it on shutdown.
type grpcPart struct {
	name     string
	addr     string
	log      *slog.Logger
	drain    time.Duration
	opts     []grpc.ServerOption
	register func(*grpc.Server)
	// background, when set, runs beside the server until ctx ends.
	background func(ctx context.Context) error
	// tls, when set, serves TLS (mutual with a client CA) from files
	// re-read every reload; nil serves plaintext.
	tls    *tlsconfig.Server
	reload time.Duration
}

// grpcTLS loads the TLS files of a gRPC server (nil for plaintext), so a
// broken certificate stops `serve` before anything listens.
func grpcTLS(name string, f tlsconfig.Files, env *Env) (*tlsconfig.Server, error) {
	if f.Mode() == tlsconfig.ModePlaintext {
		return nil, nil
	}
	s, err := tlsconfig.NewServer(f, env.Logger.With("server", name))
	if err != nil {
		return nil, fmt.Errorf("%s TLS: %w", name, err)
	}
	return s, nil
}

func (p *grpcPart) Name() string { return p.name }

// Start listens, serves until ctx ends, then stops gracefully within the
// drain time (streams such as ADS never end by themselves, so they are
// cut after it).
func (p *grpcPart) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", p.addr, err)
	}
	opts := append([]grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, p.opts...)
	// The watch ends with Start, however Start ends.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	if p.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(p.tls.Config())))
		go func() {
			defer close(watched)
			p.tls.Watch(watchCtx, p.reload)
		}()
	} else {
		close(watched)
	}
	defer func() {
		stopWatch()
		<-watched
	}()
	srv := grpc.NewServer(opts...)
	p.register(srv)
	p.logListening(ln.Addr().String())

	bgErr := make(chan error, 1)
	if p.background != nil {
		go func() { bgErr <- p.background(ctx) }()
	} else {
		close(bgErr)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("%s server: %w", p.name, err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(p.drain):
		srv.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("%s server: %w", p.name, err)
	}
	if err := <-bgErr; err != nil {
		return err
	}
	return nil
}

// logListening says how the server accepts connections: operators must
// be able to tell from the log whether a port is open to anyone.
func (p *grpcPart) logListening(addr string) {
	if p.tls == nil {
		if tlsconfig.IsLoopback(addr) {
			p.log.Info(p.name+" server listening", "addr", addr, "tls", tlsconfig.ModePlaintext, "note", "loopback only")
			return
		}
		p.log.Warn(p.name+" server listening without TLS on a non-loopback address: any host that reaches it is trusted",
			"addr", addr, "tls", tlsconfig.ModePlaintext)
		return
	}
	leaf := p.tls.Leaf()
	p.log.Info(p.name+" server listening", "addr", addr, "tls", p.tls.Mode(),
		"cert_uris", leaf.URIs, "cert_dns", leaf.DNSNames, "cert_not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}
