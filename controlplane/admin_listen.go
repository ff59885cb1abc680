package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// publicAdminPaths are all the public admin listener serves: what sidecars
// (the JWKS) and orchestrators (probes) must reach. Every other path, and
// every path a part registers, is private: a new endpoint is never
// exposed by accident.
var publicAdminPaths = map[string]bool{
	"/.well-known/jwks.json": true,
	"/healthz":               true,
	"/readyz":                true,
}

// publicOnly serves the public paths of h and 404s everything else. The
// path must match exactly, before ServeMux cleans it: "/healthz/../debug/x"
// is not /healthz.
func publicOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !publicAdminPaths[r.URL.Path] {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// privateOnly serves /metrics and /debug/* of h and 404s everything else,
// so each path lives on exactly one listener.
func privateOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" && !strings.HasPrefix(r.URL.Path, "/debug/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// errNotLoopback is why a private admin address is refused.
var errNotLoopback = errors.New("not a loopback address: the private admin listener shows every tenant's configuration, metrics and profiles " +
	"without authentication, so it binds to loopback (127.0.0.1, ::1, localhost) unless --admin-private-allow-remote is given")

// literalLoopback refuses an address that is certainly not loopback: an
// empty host (every interface) or a non-loopback IP. A host name is
// checked once bound (boundLoopback), against what it resolved to.
func literalLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port: %w", err)
	}
	if host == "" {
		return fmt.Errorf("an empty host listens on every interface: %w", errNotLoopback)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
		return errNotLoopback
	}
	return nil
}

// boundLoopback checks the address a listener actually bound.
func boundLoopback(ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		return fmt.Errorf("bound to %s: %w", ln.Addr(), errNotLoopback)
	}
	return nil
}

func isLoopbackListener(ln net.Listener) bool { return boundLoopback(ln) == nil }

// adminListener is one of the two admin HTTP servers.
type adminListener struct {
	name string
	srv  *http.Server
	ln   net.Listener
	// tls is fixed before serving: http.Server rewrites its TLSConfig
	// once it serves.
	tls bool
}

// serveAdmin starts the public and the private admin listeners and returns
// their graceful stop and a channel that yields an error if either fails
// while serving.
func serveAdmin(cfg Config, adm *admin) (stop func() error, failed <-chan error, err error) {
	var tlsCfg *tls.Config
	if cfg.AdminTLSCert != "" {
		certs, err := newCertReloader(cfg.AdminTLSCert, cfg.AdminTLSKey, cfg.Logger)
		if err != nil {
			return nil, nil, fmt.Errorf("admin server: %w", err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	pub, err := listenAdmin("public", cfg.AdminListen, &http.Server{
		Handler:   publicOnly(adm.mux),
		TLSConfig: tlsCfg,
		// Every sidecar can reach this port: bound what one client can
		// hold. Its answers are small and quick.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	})
	if err != nil {
		return nil, nil, err
	}
	// No write timeout: /debug/pprof/profile and trace stream for as long
	// as asked.
	priv, err := listenAdmin("private", cfg.AdminPrivateListen, &http.Server{Handler: privateOnly(adm.mux), ReadHeaderTimeout: 5 * time.Second})
	if err == nil && !cfg.AdminPrivateAllowRemote {
		if err = boundLoopback(priv.ln); err != nil {
			err = errors.Join(fmt.Errorf("admin server: --admin-private-listen %s: %w", cfg.AdminPrivateListen, err), priv.ln.Close())
		}
	}
	if err != nil {
		return nil, nil, errors.Join(err, closeListener(pub.ln))
	}

	logAdminListeners(cfg.Logger, pub, priv)
	ch := make(chan error, 2)
	for _, l := range []*adminListener{pub, priv} {
		go func() {
			var err error
			if l.tls {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				ch <- fmt.Errorf("admin server (%s): %w", l.name, err)
			}
		}()
	}
	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		for _, l := range []*adminListener{pub, priv} {
			if err := l.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("admin server (%s) shutdown: %w", l.name, err))
			}
		}
		return errors.Join(errs...)
	}
	return stop, ch, nil
}

func listenAdmin(name, addr string, srv *http.Server) (*adminListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin server (%s): listen on %s: %w", name, addr, err)
	}
	return &adminListener{name: name, srv: srv, ln: ln, tls: srv.TLSConfig != nil}, nil
}

func closeListener(ln net.Listener) error {
	if err := ln.Close(); err != nil {
		return fmt.Errorf("close admin listener %s: %w", ln.Addr(), err)
	}
	return nil
}

// logAdminListeners says what each listener serves, and warns where an
// address reaches the network without the protection it needs.
func logAdminListeners(log *slog.Logger, pub, priv *adminListener) {
	tlsOn := pub.tls
	log.Info("admin server listening", "listener", "public", "addr", pub.ln.Addr().String(), "tls", tlsOn,
		"paths", "/.well-known/jwks.json /healthz /readyz")
	if !tlsOn && !isLoopbackListener(pub.ln) {
		log.Warn("public admin listener serves plain HTTP on a non-loopback address: sidecars fetch the x-tenant-context keys "+
			"unauthenticated; set --admin-tls-cert and --admin-tls-key (and MeshConfig spec.controlPlaneAdminTLS)", "addr", pub.ln.Addr().String())
	}
	log.Info("admin server listening", "listener", "private", "addr", priv.ln.Addr().String(), "tls", false,
		"paths", "/metrics /debug/catalog /debug/xds /debug/pprof/")
	if !isLoopbackListener(priv.ln) {
		log.Warn("private admin listener is reachable from the network without authentication (--admin-private-allow-remote); "+
			"restrict who can reach it (NetworkPolicy, firewall)", "addr", priv.ln.Addr().String())
	}
}
