package etcdtest

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// TLSFiles are the PEM files of an etcd server that requires client
// certificates.
type TLSFiles struct {
	// Cert and Key are the server's certificate (with 127.0.0.1 among its
	// SANs) and key; ClientCA is the CA client certificates must chain to.
	Cert, Key, ClientCA string
}

// StartTLS runs an embedded etcd whose client listener serves TLS and
// requires a client certificate signed by f.ClientCA, and returns it and
// its client address (host:port). It is closed by t.Cleanup.
func StartTLS(t testing.TB, f TLSFiles) (*embed.Etcd, string) {
	t.Helper()
	var lastErr error
	for range attempts {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		clientURL := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		cfg, err := NewConfig(t.TempDir(), clientURL, fmt.Sprintf("http://127.0.0.1:%d", ports[1]))
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.ClientCA, ClientCertAuth: true}
		cfg.UnsafeNoFsync = true
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err // most likely a port taken meanwhile: retry
			continue
		}
		t.Cleanup(func() { closeOnce(e) })
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			t.Fatalf("etcdtest: etcd with TLS failed while starting: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("etcdtest: etcd with TLS not ready after 30s")
		}
		u, err := url.Parse(clientURL)
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		return e, u.Host
	}
	t.Fatalf("etcdtest: start embedded etcd with TLS after %d attempts: %v", attempts, lastErr)
	return nil, ""
}
