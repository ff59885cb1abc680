package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/xds"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
)

func sidecarNode(id, tenant string) *corev3.Node {
	return &corev3.Node{Id: id, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
		"role": structpb.NewStringValue("sidecar"), "tenant": structpb.NewStringValue(tenant),
		"service": structpb.NewStringValue("executive"), "appPort": structpb.NewNumberValue(8080),
	}}}
}

// clusters opens a stream as node and returns the names of its first
// Cluster response, or the error that closed the stream.
func clusters(ctx context.Context, c *adsclient.Client) ([]string, error) {
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		_, rerr := c.Recv() // the status of a stream ended at once
		return nil, rerr
	}
	u, err := c.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range u.Resources {
		names = append(names, n)
	}
	return names, c.Ack(u)
}

// TestXDSIdentityDecidesUnderMutualTLS runs serve with mutual TLS and its
// identity options: a sidecar certificate of tenant-a asking as tenant-b
// is refused with PermissionDenied, as tenant-a it gets tenant-a's
// clusters only; /debug/xds and /metrics show the identity and the
// refusal; the stream bound is the one configured.
func TestXDSIdentityDecidesUnderMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t)
	cfg.Preload = "testdata/preload-ab"
	cfg.XDSTLS = p.files()
	cfg.XDSTrustDomain = trustDomain
	cfg.XDSMaxStreamsPerIdentity = 2
	startRun(t, cfg)
	eventually(t, "http://"+cfg.AdminListen+"/readyz", "ready", func(r httpResult) bool { return r.code == 200 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sidecarA := identity.Service(trustDomain, "tenant-a", "executive")
	conn := dial(t, cfg.XDSListen, clientCreds(t, p.ca, p.ca, sidecarA))
	spoof, err := adsclient.Open(ctx, conn, sidecarNode("spoof", "tenant-b"), false)
	if err != nil {
		t.Fatal(err)
	}
	if names, err := clusters(ctx, spoof); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("tenant-a's certificate asking as tenant-b: clusters %v, err %v; want PermissionDenied", names, err)
	}
	own, err := adsclient.Open(ctx, conn, sidecarNode("a-1", "tenant-a"), true)
	if err != nil {
		t.Fatal(err)
	}
	names, err := clusters(ctx, own)
	if err != nil || len(names) == 0 {
		t.Fatalf("tenant-a's certificate as tenant-a: clusters %v, err %v", names, err)
	}
	for _, n := range names {
		if strings.Contains(n, "tenant-b") {
			t.Errorf("tenant-a's sidecar received %s", n)
		}
	}

	r := eventually(t, "http://"+cfg.AdminPrivateListen+"/debug/xds", "the sidecar's row", func(r httpResult) bool {
		return strings.Contains(r.body, `"a-1"`)
	})
	var dbg xds.DebugInfo
	if err := json.Unmarshal([]byte(r.body), &dbg); err != nil {
		t.Fatal(err)
	}
	for _, n := range dbg.Nodes {
		if n.ID == "a-1" && (n.Identity != sidecarA.String() || n.Tenant != "tenant-a") {
			t.Errorf("/debug/xds row %+v: want identity %s, tenant-a", n, sidecarA)
		}
	}
	eventually(t, "http://"+cfg.AdminPrivateListen+"/metrics", "the refusal counted", func(r httpResult) bool {
		return strings.Contains(r.body, `tenantmesh_xds_identity_rejections_total{reason="tenant"} 1`)
	})

	// The bound of 2 streams: a-1 holds one.
	second, err := adsclient.Open(ctx, conn, sidecarNode("a-2", "tenant-a"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clusters(ctx, second); err != nil {
		t.Fatalf("second stream: %v", err)
	}
	third, err := adsclient.Open(ctx, conn, sidecarNode("a-3", "tenant-a"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clusters(ctx, third); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third stream of one identity with --xds-max-streams-per-identity 2: %v, want ResourceExhausted", err)
	}
}

// TestServerCertificateOfAnotherTrustDomainIsLogged: serve warns when its
// own SPIFFE ID says clients of its CA are of another trust domain than
// --xds-trust-domain (all of them would be refused).
func TestServerCertificateOfAnotherTrustDomainIsLogged(t *testing.T) {
	p := newTestPKI(t)
	leaf := p.rotateServer(t)
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnTrustDomain(log, leaf, trustDomain)
	if buf.Len() != 0 {
		t.Errorf("same trust domain logged: %s", buf.String())
	}
	warnTrustDomain(log, leaf, identity.DefaultTrustDomain)
	if !strings.Contains(buf.String(), "another trust domain") || !strings.Contains(buf.String(), "spiffe://test.local/controlplane") {
		t.Errorf("no warning for a server certificate of test.local with the default trust domain: %q", buf.String())
	}
}

func TestIdentityOptionsDefaultsAndValidation(t *testing.T) {
	c := Config{}.withDefaults()
	if c.XDSTrustDomain != identity.DefaultTrustDomain || c.XDSMaxStreamsPerIdentity != xds.DefaultMaxStreamsPerIdentity ||
		c.XDSMaxGroupsPerIdentity != xds.DefaultMaxGroupsPerIdentity {
		t.Errorf("defaults: %q %d %d", c.XDSTrustDomain, c.XDSMaxStreamsPerIdentity, c.XDSMaxGroupsPerIdentity)
	}
	for name, edit := range map[string]func(*Config){
		"trust domain with a slash": func(c *Config) { c.XDSTrustDomain = "example.org/x" },
		"upper-case trust domain":   func(c *Config) { c.XDSTrustDomain = "Example.org" },
		"negative stream bound":     func(c *Config) { c.XDSMaxStreamsPerIdentity = -1 },
		"negative group bound":      func(c *Config) { c.XDSMaxGroupsPerIdentity = -1 },
	} {
		c := Config{}
		edit(&c)
		if err := c.withDefaults().validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
