// Package etcdtest starts a real, embedded, single-member etcd for tests.
// Tests across the module use it instead of a mock: the store's
// transactions, watches and compaction behaviour are etcd's own.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// attempts bounds the retries when a port picked as free is taken by
// another test process before etcd binds it.
const attempts = 5

// Start runs an embedded etcd on free loopback ports with its data in
// t.TempDir() and returns a connected client. Both are closed by
// t.Cleanup. It fails the test when etcd cannot start.
func Start(t testing.TB) (*clientv3.Client, *embed.Etcd) {
	t.Helper()
	var lastErr error
	for range attempts {
		e, err := startServer(t.TempDir())
		if err != nil {
			lastErr = err
			continue
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{ClientURL(e)},
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			e.Close()
			t.Fatalf("etcdtest: connect client: %v", err)
		}
		t.Cleanup(func() {
			if err := cli.Close(); err != nil {
				t.Logf("etcdtest: close client: %v", err)
			}
			closeOnce(e)
		})
		return cli, e
	}
	t.Fatalf("etcdtest: start embedded etcd after %d attempts: %v", attempts, lastErr)
	return nil, nil
}

// closed remembers the servers already closed: embed.Etcd.Close panics
// when called twice, and Restart closes a server Start's cleanup closes.
var closed sync.Map

func closeOnce(e *embed.Etcd) {
	if _, done := closed.LoadOrStore(e, true); !done {
		e.Close()
	}
}

// ClientURL returns the URL a client dials to reach e.
func ClientURL(e *embed.Etcd) string {
	return "http://" + e.Clients[0].Addr().String()
}

// NewConfig returns an embedded etcd configuration listening on the given
// loopback URLs with its data in dir and logging at warn level or above.
// controlplane uses it for `serve` with no --etcd-endpoints.
func NewConfig(dir, clientURL, peerURL string) (*embed.Config, error) {
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("client url %q: %w", clientURL, err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, fmt.Errorf("peer url %q: %w", peerURL, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "tenantmesh"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	return cfg, nil
}

func startServer(dir string) (*embed.Etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	cfg, err := NewConfig(dir,
		fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		fmt.Sprintf("http://127.0.0.1:%d", ports[1]))
	if err != nil {
		return nil, err
	}
	// Tests do not need durability; fsync dominates start-up and every
	// write on a shared, slow disk.
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		if isAddrInUse(err) {
			return nil, err
		}
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd not ready after 30s")
	}
}

// freePorts asks the kernel for n distinct free loopback ports. Another
// process may take one before etcd binds it; Start retries for that.
func freePorts(n int) (ports []int, err error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			if cerr := l.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("release probe port: %w", cerr)
			}
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func isAddrInUse(err error) bool {
	return strings.Contains(err.Error(), "address already in use")
}

// Restart closes e and starts a new etcd on the same data directory and
// ports, for tests of what happens while etcd is away. Clients created
// by Start reconnect by themselves. The new server is closed by
// t.Cleanup.
func Restart(t testing.TB, e *embed.Etcd, down time.Duration) *embed.Etcd {
	t.Helper()
	cfg := e.Config()
	closeOnce(e)
	time.Sleep(down)
	var lastErr error
	for range attempts {
		ne, err := embed.StartEtcd(&cfg)
		if err != nil {
			// The old listeners may take a moment to release the ports.
			lastErr = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		select {
		case <-ne.Server.ReadyNotify():
			t.Cleanup(func() { closeOnce(ne) })
			return ne
		case err := <-ne.Err():
			ne.Close()
			lastErr = err
		case <-time.After(30 * time.Second):
			ne.Close()
			lastErr = fmt.Errorf("etcd not ready after 30s")
		}
	}
	t.Fatalf("etcdtest: restart etcd: %v", lastErr)
	return nil
}
