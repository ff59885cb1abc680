package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
)

// TestXDSDumpOverMutualTLS runs serve with mutual TLS on certificates made
// by `tenantmesh certs` and dumps an edge's configuration with and
// without a client certificate.
func TestXDSDumpOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	mustRun(t, "certs", "ca", "--out", ca)
	mustRun(t, "certs", "server", "--ca", ca, "--out", filepath.Join(dir, "server"), "--ip", "127.0.0.1")
	mustRun(t, "certs", "edge", "debug", "--ca", ca, "--out", filepath.Join(dir, "debug"))

	addr := func() string { return "127.0.0.1:" + itoa(ratelimittest.FreePort(t)) }
	cfg := controlplane.Config{
		DataDir: t.TempDir(), EmbeddedEtcdListen: addr(), EmbeddedEtcdPeerListen: addr(),
		XDSListen: addr(), AuthzListen: addr(), AdminListen: addr(), DisableAuthz: true,
		XDSTLS: tlsconfig.Files{Cert: filepath.Join(dir, "server", "tls.crt"), Key: filepath.Join(dir, "server", "tls.key"),
			ClientCA: filepath.Join(dir, "server", "ca.crt")},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controlplane.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", cfg.XDSListen, 200*time.Millisecond)
		if err == nil {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never listened on %s", cfg.XDSListen)
		}
		time.Sleep(50 * time.Millisecond)
	}

	base := []string{"xds", "dump", "--xds-address", cfg.XDSListen, "--role", "edge", "--timeout", "5s"}
	r := runArgs("", append(base, "--xds-tls-ca", filepath.Join(dir, "debug", "ca.crt"),
		"--xds-tls-cert", filepath.Join(dir, "debug", "tls.crt"), "--xds-tls-key", filepath.Join(dir, "debug", "tls.key"))...)
	if r.code != 0 || !strings.Contains(r.stdout, "TYPE") {
		t.Fatalf("dump with the edge certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runArgs("", append(base, "--xds-tls-ca", filepath.Join(dir, "debug", "ca.crt"))...); r.code != exitError {
		t.Errorf("dump without a client certificate: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	if r := runArgs("", base...); r.code != exitError {
		t.Errorf("plaintext dump of a TLS server: exit %d, want %d", r.code, exitError)
	}
	if r := runArgs("", append(base, "--xds-tls-cert", "c.pem", "--xds-tls-key", "k.pem")...); r.code != exitUsage {
		t.Errorf("client certificate without a CA: exit %d, want %d", r.code, exitUsage)
	}
}
