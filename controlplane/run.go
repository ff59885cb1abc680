package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tenantmesh/tenantmesh/internal/etcddiag"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// etcdProbeInterval is how often /readyz's view of etcd is refreshed.
const etcdProbeInterval = 5 * time.Second

// Run runs the control plane until ctx ends, then shuts it down
// gracefully: parts drain, the admin server stops, etcd closes. It
// returns the first error that stopped it, nil on a clean shutdown.
//
// Start-up order: the admin listeners first (so /healthz answers and
// /readyz explains what is missing), then etcd (embedded when no endpoints are
// given), the preload, the parts, and the store watch that feeds them.
func Run(ctx context.Context, cfg Config) (err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	log := cfg.Logger
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	adm := newAdmin(reg, log)
	stopAdmin, adminErr, err := serveAdmin(cfg, adm)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopAdmin()) }()

	var e *embed.Etcd
	if len(cfg.EtcdEndpoints) == 0 {
		var closing atomic.Bool
		if e, err = startEmbeddedEtcd(cfg, log, &closing); err != nil {
			return err
		}
		defer func() {
			closing.Store(true)
			e.Close()
			log.Info("embedded etcd stopped")
		}()
	}
	cli, err := connect(cfg, e)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := cli.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
			err = errors.Join(err, fmt.Errorf("close etcd client: %w", cerr))
		}
	}()
	log.Info("etcd client ready", "endpoints", cli.Endpoints(), "prefix", cfg.Prefix)
	audit, err := auditOptions(cfg, cli, e == nil, log)
	if err != nil {
		return err
	}
	st := store.New(cli, store.Options{Prefix: cfg.Prefix, Logger: log, Registerer: reg, Audit: audit})

	if cfg.Preload != "" {
		if err := preload(ctx, st, cfg.Preload, log); err != nil {
			return err
		}
	}

	watch := &storeWatch{st: st}
	probe := newEtcdProbe(st, etcdProbeInterval, reg)
	if e == nil {
		files := etcddiag.Files{CA: cfg.EtcdCA, Cert: cfg.EtcdCert, Key: cfg.EtcdKey}
		probe.explain = func(ctx context.Context) error { return etcddiag.Explain(ctx, cfg.EtcdEndpoints, files) }
	}
	parts := []Part{probe, watch}
	if cfg.AuditCompactInterval > 0 {
		parts = append(parts, &auditCompactor{st: st, every: cfg.AuditCompactInterval, log: log})
	}
	env := &Env{Config: cfg, Store: st, Client: cli, Logger: log, Registry: reg}
	for _, build := range append(builtinParts(cfg), cfg.ExtraParts...) {
		p, err := build(env)
		if err != nil {
			return fmt.Errorf("build part: %w", err)
		}
		parts = append(parts, p)
		if s, ok := p.(Sink); ok {
			watch.sinks = append(watch.sinks, s)
		}
		if h, ok := p.(AdminHandler); ok {
			h.RegisterAdmin(adm.mux)
		}
	}
	adm.setParts(parts, watch)
	return runParts(ctx, cancel, parts, adminErr, log)
}

// runParts starts every part and waits until ctx ends or one part (or the
// admin server) fails, which stops all of them.
func runParts(ctx context.Context, cancel context.CancelFunc, parts []Part, adminErr <-chan error, log *slog.Logger) error {
	errs := make(chan error, len(parts)+1)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Start(ctx); err != nil {
				log.Error("part failed; stopping", "part", p.Name(), "error", err)
				errs <- fmt.Errorf("%s: %w", p.Name(), err)
				cancel()
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-adminErr:
		errs <- err
		cancel()
	}
	log.Info("shutting down")
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
