package xds

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"

	"github.com/tenantmesh/tenantmesh/internal/grpctest"
)

// syncBuffer is a log sink several goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serveRegistered starts a Server with metrics and a JSON log on a
// loopback gRPC listener, with one tenant (tenant-a, upstream svc) loaded.
func serveRegistered(t *testing.T) (*Server, *grpc.ClientConn, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	s := New(Options{Registerer: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 3, Tenants: []*tenants.Tenant{tenant("tenant-a", 9001, 2)}}, nil))
	addr := grpctest.Serve(t, s.Register)
	conn := grpctest.Dial(t, addr, nil)
	return s, conn, reg, logs
}

// envoyNode is a node as Envoy sends it: user_agent_name "envoy" and its
// release in user_agent_build_version.
func envoyNode(id, role string, major, minor, patch uint32) *corev3.Node {
	return &corev3.Node{
		Id: id, Cluster: "edges",
		Metadata:      &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue(role)}},
		UserAgentName: "envoy",
		UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: major, MinorNumber: minor, Patch: patch},
		}},
	}
}

// openAndWait opens an ADS stream as node and waits for its first
// response, after which the server has seen the stream's first request.
func openAndWait(ctx context.Context, t *testing.T, conn *grpc.ClientConn, node *corev3.Node, delta bool) *adsclient.Client {
	t.Helper()
	c, err := adsclient.Open(ctx, conn, node, delta)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	recv(t, c, resourcev3.ClusterType, 10*time.Second)
	return c
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nodeByID(d DebugInfo, id string) (DebugNode, bool) {
	for _, n := range d.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return DebugNode{}, false
}

const incompatibleGauge = "tenantmesh_xds_incompatible_nodes"

func TestOldEnvoyIsCountedLoggedAndShownUntilItLeaves(t *testing.T) {
	s, conn, reg, logs := serveRegistered(t)
	if got := gaugeValue(t, reg, incompatibleGauge); got != 0 {
		t.Fatalf("%s = %v before any stream", incompatibleGauge, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sctx, closeSotW := context.WithCancel(ctx)
	openAndWait(sctx, t, conn, envoyNode("old-edge", "edge", 1, 30, 0), false)
	if got := gaugeValue(t, reg, incompatibleGauge); got != 1 {
		t.Fatalf("%s = %v with an Envoy 1.30.0 connected, want 1", incompatibleGauge, got)
	}
	// The same Envoy on a second stream (delta) is still one node.
	dctx, closeDelta := context.WithCancel(ctx)
	openAndWait(dctx, t, conn, envoyNode("old-edge", "edge", 1, 30, 0), true)
	if got := gaugeValue(t, reg, incompatibleGauge); got != 1 {
		t.Errorf("%s = %v with one old Envoy on two streams, want 1", incompatibleGauge, got)
	}

	d := s.Debug()
	n, ok := nodeByID(d, "old-edge")
	if !ok {
		t.Fatalf("old-edge not in /debug/xds nodes: %+v", d.Nodes)
	}
	want := DebugNode{ID: "old-edge", Cluster: "edges", Role: "edge", Group: edgeGroup, Client: "envoy", Version: "1.30.0", Incompatible: true, Streams: 2}
	if n != want {
		t.Errorf("debug node = %+v, want %+v", n, want)
	}
	if d.MinEnvoyVersion != MinEnvoyVersion.String() {
		t.Errorf("minEnvoyVersion = %q, want %q", d.MinEnvoyVersion, MinEnvoyVersion)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"id":"old-edge"`) || !strings.Contains(string(b), `"incompatible":true`) ||
		!strings.Contains(string(b), `"minEnvoyVersion":"`+MinEnvoyVersion.String()+`"`) {
		t.Errorf("/debug/xds JSON lacks the incompatible node: %s", b)
	}

	log := logs.String()
	if !strings.Contains(log, `"level":"WARN"`) || !strings.Contains(log, `"node":"old-edge"`) ||
		!strings.Contains(log, `"envoy_version":"1.30.0"`) || !strings.Contains(log, `"role":"edge"`) {
		t.Errorf("no warning naming the old Envoy; log:\n%s", log)
	}

	closeSotW()
	closeDelta()
	eventually(t, "the old Envoy's streams are gone", func() bool {
		_, still := nodeByID(s.Debug(), "old-edge")
		return !still
	})
	if got := gaugeValue(t, reg, incompatibleGauge); got != 0 {
		t.Errorf("%s = %v after the old Envoy disconnected, want 0", incompatibleGauge, got)
	}
}

func TestCurrentEnvoyIsNotIncompatible(t *testing.T) {
	s, conn, reg, logs := serveRegistered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	openAndWait(ctx, t, conn, envoyNode("new-edge", "edge", 1, 40, 0), true)
	if got := gaugeValue(t, reg, incompatibleGauge); got != 0 {
		t.Errorf("%s = %v with only Envoy 1.40.0 connected, want 0", incompatibleGauge, got)
	}
	n, ok := nodeByID(s.Debug(), "new-edge")
	if !ok || n.Incompatible || n.Version != "1.40.0" || n.Client != "envoy" {
		t.Errorf("debug node = %+v (found %v), want envoy 1.40.0 not incompatible", n, ok)
	}
	if strings.Contains(logs.String(), "older than the minimum") {
		t.Errorf("warned about Envoy 1.40.0:\n%s", logs.String())
	}
}

// A sidecar's warning carries its tenant, as every tenant-scoped log does.
func TestOldSidecarWarningNamesItsTenant(t *testing.T) {
	_, conn, reg, logs := serveRegistered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := envoyNode("a-1", "sidecar", 1, 35, 2)
	node.Metadata.Fields["tenant"] = structpb.NewStringValue("tenant-a")
	node.Metadata.Fields["service"] = structpb.NewStringValue("svc")
	node.Metadata.Fields["appPort"] = structpb.NewNumberValue(8080)
	openAndWait(ctx, t, conn, node, true)
	if got := gaugeValue(t, reg, incompatibleGauge); got != 1 {
		t.Errorf("%s = %v with an Envoy 1.35.2 sidecar, want 1", incompatibleGauge, got)
	}
	if log := logs.String(); !strings.Contains(log, `"tenant_id":"tenant-a"`) || !strings.Contains(log, `"role":"sidecar"`) {
		t.Errorf("warning lacks tenant_id/role; log:\n%s", log)
	}
}

// Proxyless gRPC reports its own version, which is not an Envoy release:
// grpc-go 1.30.0 must not read as Envoy 1.30.0.
func TestGRPCGoClientIsNotCountedAsEnvoy(t *testing.T) {
	s, conn, reg, _ := serveRegistered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := &corev3.Node{
		Id:                   "grpc-client-1",
		Metadata:             &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("grpc")}},
		UserAgentName:        "gRPC Go",
		UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "1.30.0"},
	}
	openAndWait(ctx, t, conn, node, false)
	if got := gaugeValue(t, reg, incompatibleGauge); got != 0 {
		t.Errorf("%s = %v with only a grpc-go client connected, want 0", incompatibleGauge, got)
	}
	n, ok := nodeByID(s.Debug(), "grpc-client-1")
	want := DebugNode{ID: "grpc-client-1", Role: "grpc", Group: "grpc", Client: "gRPC Go", Version: "1.30.0", Streams: 1}
	if !ok || n != want {
		t.Errorf("debug node = %+v (found %v), want %+v", n, ok, want)
	}
}

func TestClassifyNode(t *testing.T) {
	min := EnvoyVersion{1, 38, 0}
	cases := []struct {
		name         string
		node         *corev3.Node
		incompatible bool
		version      string
	}{
		{"envoy older", envoyNode("e", "edge", 1, 37, 9), true, "1.37.9"},
		{"envoy at the minimum", envoyNode("e", "edge", 1, 38, 0), false, "1.38.0"},
		{"envoy newer major", envoyNode("e", "edge", 2, 0, 0), false, "2.0.0"},
		{"envoy version as a string", &corev3.Node{UserAgentName: "envoy",
			UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "1.31.2"}}, true, "1.31.2"},
		{"envoy without a version", &corev3.Node{UserAgentName: "envoy"}, false, ""},
		{"envoy unparseable version", &corev3.Node{UserAgentName: "Envoy",
			UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "custom"}}, false, "custom"},
		{"no user agent (ratelimit, xds dump)", &corev3.Node{Id: "rl"}, false, ""},
		{"grpc-java with an old-looking version", &corev3.Node{UserAgentName: "gRPC Java",
			UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "1.20.0"}}, false, "1.20.0"},
	}
	for _, c := range cases {
		got := classifyNode(c.node, min)
		if got.incompatible != c.incompatible || got.version != c.version {
			t.Errorf("%s: incompatible %v version %q, want %v %q", c.name, got.incompatible, got.version, c.incompatible, c.version)
		}
	}
}

func TestParseEnvoyVersion(t *testing.T) {
	for in, want := range map[string]EnvoyVersion{
		"1.40.0": {1, 40, 0}, "v1.40.0": {1, 40, 0}, "v1.40-latest": {1, 40, 0},
		"1.38.2-dev": {1, 38, 2}, "1.37": {1, 37, 0},
	} {
		if got, ok := ParseEnvoyVersion(in); !ok || got != want {
			t.Errorf("ParseEnvoyVersion(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "latest", "1", "1.x.0", "1.2.3.4", "dev-abc"} {
		if got, ok := ParseEnvoyVersion(in); ok {
			t.Errorf("ParseEnvoyVersion(%q) = %v, want no version", in, got)
		}
	}
	if !(EnvoyVersion{1, 37, 9}).Less(EnvoyVersion{1, 38, 0}) || (EnvoyVersion{1, 38, 0}).Less(EnvoyVersion{1, 38, 0}) ||
		(EnvoyVersion{2, 0, 0}).Less(EnvoyVersion{1, 99, 99}) {
		t.Error("EnvoyVersion.Less orders releases wrongly")
	}
}
