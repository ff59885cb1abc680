package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func newDemoBackendCmd(g *globals) *cobra.Command {
	var listen, name string
	c := &cobra.Command{
		Use:   "demo-backend",
		Short: "Run a demo HTTP service that echoes the request it received as JSON",
		Long: `A tiny HTTP server for demos and tests: every request is answered with a JSON
document of the method, path, host and the headers that reached it — so the
x-tenant-id, x-tenant-tier and x-tenant-context headers the edge injects (and
the ones it strips) are visible. GET /healthz answers 200 "ok".`,
		Example: `  tenantmesh demo-backend --listen :8080 --name tenant-a-executive`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemoBackend(ctx, g, listen, name)
		},
	}
	c.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	c.Flags().StringVar(&name, "name", "demo-backend", "name reported in every answer (which backend served it)")
	return c
}

func runDemoBackend(ctx context.Context, g *globals, listen, name string) error {
	log := slog.New(slog.NewTextHandler(g.stderr, nil)).With("backend", name)
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("demo-backend: %w", err)
	}
	srv := &http.Server{Handler: demoBackendHandler(name, log), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	log.Info("demo backend listening", "address", l.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("demo-backend: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("demo-backend shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("demo-backend: %w", err)
	}
	return nil
}

// echo is what the demo backend answers.
type echo struct {
	Backend string `json:"backend"`
	Method  string `json:"method"`
	Host    string `json:"host"`
	Path    string `json:"path"`
	Query   string `json:"query,omitempty"`
	// Headers are lower-cased; repeated headers are joined with ", ".
	Headers map[string]string `json:"headers"`
}

// demoBackendHandler echoes every request as JSON, except GET /healthz.
func demoBackendHandler(name string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := w.Write([]byte("ok\n")); err != nil {
			log.Debug("write health answer", "error", err)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e := echo{Backend: name, Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
			Headers: make(map[string]string, len(r.Header))}
		for k, v := range r.Header {
			e.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		log.Info("request", "method", r.Method, "path", r.URL.Path, "tenant_id", r.Header.Get("X-Tenant-Id"))
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&e); err != nil {
			log.Warn("write echo", "error", err)
		}
	})
	return mux
}
