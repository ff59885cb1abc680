package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
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
	srv := grpc.NewServer(opts...)
	p.register(srv)
	p.log.Info(p.name+" server listening", "addr", ln.Addr().String())

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
