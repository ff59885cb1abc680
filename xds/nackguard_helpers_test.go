package xds

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"

	"github.com/tenantmesh/tenantmesh/internal/grpctest"
)

const testTrustDomain = "test.local"

// tlsFixture is a Server behind real TLS whose client certificates come
// from a dev CA. Client certificates are verified when given but not
// required (tls.VerifyClientCertIfGiven), so one server has
// authenticated and unauthenticated streams side by side: what the NACK
// guard must tell apart. (serve --xds-tls-client-ca requires them; the
// guard must not depend on that.)
type tlsFixture struct {
	s    *Server
	st   *statusLog
	addr string
	ca   *devca.CA
}

func newTLSFixture(t *testing.T, opts Options) *tlsFixture {
	t.Helper()
	ca, err := devca.NewCA(testTrustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFixture{st: &statusLog{}, ca: ca}
	opts.Status, opts.TrustDomain = f.st, testTrustDomain
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f.s = New(opts)
	runServer(t, f.s)
	f.addr = serveTLS(t, f.s, ca, testTrustDomain, tls.VerifyClientCertIfGiven)
	return f
}

// runServer runs s.Run until the test ends.
func runServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// conn dials the fixture presenting a certificate for id (none: nil).
func (f *tlsFixture) conn(t *testing.T, id *identity.ID) *grpc.ClientConn {
	t.Helper()
	if id == nil {
		return dialTLS(t, f.addr, f.ca, nil, identity.ID{})
	}
	return dialTLS(t, f.addr, f.ca, f.ca, *id)
}

func idPtr(id identity.ID) *identity.ID { return &id }

// adsStream is an ADS client whose cluster updates are handed to the test
// unanswered; every other type is ACKed.
type adsStream struct {
	c        *adsclient.Client
	clusters chan *adsclient.Update
	err      chan error // the stream's end
}

// open opens an ADS stream as node and subscribes what an Envoy of its
// role asks for (an edge also VHDS, by its route configuration's name).
func open(ctx context.Context, t *testing.T, conn grpc.ClientConnInterface, node *corev3.Node, delta bool) *adsStream {
	t.Helper()
	c, err := adsclient.Open(ctx, conn, node, delta)
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(typ string, names ...string) bool {
		err := c.Subscribe(typ, names...)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		// EOF: the server closed the stream (refused it); Recv returns why.
		return err == nil
	}
	ok := true
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType} {
		ok = ok && subscribe(typ)
	}
	if ok && node.GetMetadata().GetFields()["role"].GetStringValue() == "edge" {
		subscribe(resourcev3.VirtualHostType, "edge-routes")
	}
	s := &adsStream{c: c, clusters: make(chan *adsclient.Update, 16), err: make(chan error, 1)}
	go func() {
		for {
			u, err := c.Recv()
			if err != nil {
				s.err <- err
				return
			}
			if u.TypeURL == resourcev3.ClusterType {
				s.clusters <- u
				continue
			}
			if err := c.Ack(u); err != nil {
				s.err <- err
				return
			}
		}
	}()
	return s
}

// next is the stream's next cluster update.
func (s *adsStream) next(t *testing.T) *adsclient.Update {
	t.Helper()
	select {
	case u := <-s.clusters:
		return u
	case err := <-s.err:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no cluster update within 10s")
	}
	return nil
}

// settled waits until no tenant waits for an acknowledgement.
func settled(t *testing.T, s *Server) {
	t.Helper()
	eventually(t, "no pending tenants", func() bool { return len(s.Debug().Pending) == 0 })
}

// statuses are the tenant's states as written, oldest first.
func (l *statusLog) statuses(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.got {
		if s.Tenant == id {
			out = append(out, s.State+"@"+strconv.FormatInt(s.Revision, 10))
		}
	}
	return out
}

func (l *statusLog) has(id, state string) bool {
	for _, s := range l.statuses(id) {
		if strings.HasPrefix(s, state+"@") {
			return true
		}
	}
	return false
}

// slowTenant is tenant(id, port, rev) with a connect timeout.
func slowTenant(id string, port int, rev int64, timeout string) *tenants.Tenant {
	t := tenant(id, port, rev)
	t.Spec.Upstreams[0].ConnectTimeout = tenants.Duration(timeout)
	return t
}

// servedSrc is the tenant version a group translated. Caller must not
// hold s.mu.
func servedSrc(s *Server, group, id string) *tenants.Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[group]
	if !ok || g.tenants[id] == nil {
		return nil
	}
	return g.tenants[id].src
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// listen runs s and serves it on a loopback gRPC listener (plaintext).
func listen(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	runServer(t, s)
	addr := grpctest.Serve(t, s.Register)
	conn := grpctest.Dial(t, addr, nil)
	return conn
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
