package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// embeddedReadyTimeout bounds the embedded etcd's start (it replays its
// WAL from DataDir, which takes a while on big data sets).
const embeddedReadyTimeout = 60 * time.Second

// startEmbeddedEtcd runs a single-member etcd in-process with its data in
// cfg.DataDir.
// closing silences etcd's logs once set (see etcdLogCore).
func startEmbeddedEtcd(cfg Config, log *slog.Logger, closing *atomic.Bool) (*embed.Etcd, error) {
	clientURL, err := listenURL(cfg.EmbeddedEtcdListen)
	if err != nil {
		return nil, fmt.Errorf("--embedded-etcd-listen: %w", err)
	}
	peerURL, err := listenURL(cfg.EmbeddedEtcdPeerListen)
	if err != nil {
		return nil, fmt.Errorf("--embedded-etcd-peer-listen: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "tenantmesh"
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	// etcd logs through zap at info by default; its warnings are what an
	// operator of the embedded mode needs, in the control plane's format.
	ec.LogLevel = "warn"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newEtcdLogger(log, closing))
	// Keep the history bounded: the store re-reads on compaction.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "1h"
	ec.MaxTxnOps, ec.MaxRequestBytes = embeddedTxnLimits()
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd (data %s, client %s, peer %s): %w", cfg.DataDir, clientURL, peerURL, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed while starting: %w", err)
	case <-time.After(embeddedReadyTimeout):
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready after %s", embeddedReadyTimeout)
	}
	log.Info("embedded etcd started", "client_url", clientURL.String(), "peer_url", peerURL.String(), "data_dir", cfg.DataDir)
	return e, nil
}

// embeddedTxnLimits are the transaction limits of the embedded etcd.
// MaxTxnOps goes from etcd's 128 to store.BatchTxnOps (1,024), so that
// a big apply takes about 300 tenants per transaction instead of 40:
// every apply transaction also extends the audit chain, so they cannot
// run side by side and fewer, bigger ones are what makes 10,000 tenants
// fast. The limit exists because etcd applies a transaction serially and
// a huge one blocks the others (etcd-io/etcd#7826, the --max-txn-ops
// flag's origin, #7976); 1,024 puts of ~1-2 KB values are still a
// fraction of a millisecond of backend work. MaxRequestBytes stays at
// etcd's 1.5 MiB (embed.DefaultMaxRequestBytes; etcd's "System limits"
// page: larger requests raise other requests' latency): the store sizes
// its transactions to it, so raising it would buy little and make every
// raft entry potentially bigger.
func embeddedTxnLimits() (maxTxnOps, maxRequestBytes uint) {
	return store.BatchTxnOps, embed.DefaultMaxRequestBytes
}

// listenURL accepts host:port or a URL.
func listenURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("%q has no port", s)
	}
	return u, nil
}

// connect returns a client of the external cluster or of the embedded
// etcd e.
func connect(cfg Config, e *embed.Etcd) (*clientv3.Client, error) {
	cc := cfg.clientConfig()
	if e != nil {
		cc = store.ClientConfig{Endpoints: []string{e.Clients[0].Addr().String()}}
	}
	return store.NewClient(cc)
}

// etcdProbe is the part that checks etcd answers, for /readyz and the
// tenantmesh_etcd_reachable gauge: a watch does not report an unreachable
// cluster, it just waits.
type etcdProbe struct {
	st        *store.Store
	every     time.Duration
	reachable prometheus.Gauge
	// explain, when set, says why an unreachable etcd is (a TLS problem
	// rather than no etcd): the client reports only a deadline.
	explain func(context.Context) error
	mu      sync.Mutex
	err     error
}

func newEtcdProbe(st *store.Store, every time.Duration, reg prometheus.Registerer) *etcdProbe {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tenantmesh_etcd_reachable",
		Help: "1 when etcd answered the last periodic read, 0 when it did not.",
	})
	reg.MustRegister(g)
	return &etcdProbe{st: st, every: every, reachable: g, err: errors.New("not checked yet")}
}

// Name implements Part.
func (p *etcdProbe) Name() string { return "etcd" }

// Start implements Part: it checks etcd every p.every until ctx ends.
func (p *etcdProbe) Start(ctx context.Context) error {
	for {
		err := p.st.Ping(ctx, 2*time.Second)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, store.ErrUnreachable) && p.explain != nil {
			if why := p.explain(ctx); why != nil {
				err = fmt.Errorf("%w: %w", err, why)
			}
		}
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		if err != nil {
			p.reachable.Set(0)
		} else {
			p.reachable.Set(1)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.every):
		}
	}
}

// Ready is always nil: an unreachable etcd must not take a control plane
// that serves its last Catalog out of rotation. Degraded reports it.
func (p *etcdProbe) Ready() error { return nil }

// Degraded returns the result of the last check.
func (p *etcdProbe) Degraded() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
