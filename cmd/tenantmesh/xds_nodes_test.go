package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"

	"github.com/tenantmesh/tenantmesh/internal/grpctest"
)

// xdsWithAdmin runs an xDS server on loopback gRPC and an admin server
// whose /debug/xds encodes Server.Debug() as controlplane's handler does
// (controlplane/xds_part.go). It returns both addresses.
func xdsWithAdmin(t *testing.T) (xdsAddr, adminAddr string) {
	t.Helper()
	s := xds.New(xds.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.Update(tenants.NewCatalog(tenants.Input{Revision: 1}, nil))
	addr := grpctest.Serve(t, s.Register)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/xds", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(s.Debug()); err != nil {
			t.Errorf("write /debug/xds: %v", err)
		}
	})
	admin := httptest.NewServer(mux)
	t.Cleanup(admin.Close)
	return addr, strings.TrimPrefix(admin.URL, "http://")
}

// connectNode opens an ADS stream as node and waits for the first
// response, so the server has registered the node.
func connectNode(t *testing.T, xdsAddr string, node *corev3.Node) {
	t.Helper()
	conn := grpctest.Dial(t, xdsAddr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := adsclient.Open(ctx, conn, node, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); err != nil {
		t.Fatalf("first response for %s: %v", node.GetId(), err)
	}
}

func envoyEdge(id string, major, minor uint32) *corev3.Node {
	return &corev3.Node{
		Id:            id,
		Metadata:      &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("edge")}},
		UserAgentName: "envoy",
		UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: major, MinorNumber: minor},
		}},
	}
}

func grpcGoNode(id string) *corev3.Node {
	return &corev3.Node{
		Id:                   id,
		Metadata:             &structpb.Struct{Fields: map[string]*structpb.Value{"role": structpb.NewStringValue("grpc")}},
		UserAgentName:        "gRPC Go",
		UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "1.85.0"},
	}
}

func TestXDSNodesListsVersionsAndFlagsOldEnvoys(t *testing.T) {
	xdsAddr, admin := xdsWithAdmin(t)
	connectNode(t, xdsAddr, envoyEdge("old-edge", 1, 30))
	connectNode(t, xdsAddr, envoyEdge("new-edge", 1, 40))
	connectNode(t, xdsAddr, grpcGoNode("grpc-1"))

	r := runArgs("", "xds", "nodes", "--admin-address", admin)
	if r.code != 0 {
		t.Fatalf("xds nodes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := map[string]*regexp.Regexp{
		"old-edge": regexp.MustCompile(`(?m)^old-edge\s+edge\s+<none>\s+edge\s+<none>\s+envoy\s+1\.30\.0\s+1\s+yes \(< ` + regexp.QuoteMeta(xds.MinEnvoyVersion.String()) + `\)\s+0\s+<none>\s+<none>$`),
		"new-edge": regexp.MustCompile(`(?m)^new-edge\s+edge\s+<none>\s+edge\s+<none>\s+envoy\s+1\.40\.0\s+1\s+no\s+0\s+<none>\s+<none>$`),
		"grpc-1":   regexp.MustCompile(`(?m)^grpc-1\s+grpc\s+<none>\s+grpc\s+<none>\s+gRPC Go\s+1\.85\.0\s+1\s+no\s+0\s+<none>\s+<none>$`),
	}
	for id, re := range want {
		if !re.MatchString(r.stdout) {
			t.Errorf("table row for %s missing or wrong:\n%s", id, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "1 node(s) run an Envoy older than "+xds.MinEnvoyVersion.String()) {
		t.Errorf("no warning about the old Envoy on stderr: %q", r.stderr)
	}

	r = runArgs("", "xds", "nodes", "--admin-address", "http://"+admin, "-o", "json")
	if r.code != 0 {
		t.Fatalf("xds nodes -o json: exit %d\n%s", r.code, r.stderr)
	}
	var v nodesView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("-o json is not a node list: %v\n%s", err, r.stdout)
	}
	if v.MinEnvoyVersion != xds.MinEnvoyVersion.String() || len(v.Nodes) != 3 {
		t.Fatalf("json view = %+v", v)
	}
	for _, n := range v.Nodes {
		if n.Incompatible != (n.ID == "old-edge") {
			t.Errorf("node %s (%s %s): incompatible = %v", n.ID, n.Client, n.Version, n.Incompatible)
		}
	}

	r = runArgs("", "xds", "nodes", "--admin-address", admin, "--incompatible")
	if r.code != exitError || !strings.Contains(r.stdout, "old-edge") || strings.Contains(r.stdout, "new-edge") || strings.Contains(r.stdout, "grpc-1") {
		t.Errorf("--incompatible: exit %d, want %d and only old-edge listed\n%s%s", r.code, exitError, r.stdout, r.stderr)
	}
}

func TestXDSNodesIncompatibleSucceedsWhenFleetIsCurrent(t *testing.T) {
	xdsAddr, admin := xdsWithAdmin(t)
	connectNode(t, xdsAddr, envoyEdge("new-edge", 1, 40))
	connectNode(t, xdsAddr, grpcGoNode("grpc-1"))
	r := runArgs("", "xds", "nodes", "--admin-address", admin, "--incompatible")
	if r.code != 0 || strings.Contains(r.stdout, "new-edge") || r.stderr != "" {
		t.Errorf("--incompatible with a current fleet: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestXDSNodesAdminDownIsAnError(t *testing.T) {
	r := runArgs("", "xds", "nodes", "--admin-address", closedEndpoint(t), "--timeout", "2s")
	if r.code != exitError || !strings.Contains(r.stderr, "admin server") {
		t.Errorf("admin down: exit %d, stderr %q", r.code, r.stderr)
	}
}

// The Envoy images the deployment runs must meet the minimum version the
// xDS server warns about.
func TestDeployedEnvoyImagesMeetTheMinimumVersion(t *testing.T) {
	files := []string{filepath.Join(deployDir, "docker-compose.yaml")}
	k8s, err := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, k8s...)
	image := regexp.MustCompile(`image:\s*"?envoyproxy/envoy:([^\s"]+)`)
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range image.FindAllStringSubmatch(string(b), -1) {
			found++
			v, ok := xds.ParseEnvoyVersion(m[1])
			if !ok {
				t.Errorf("%s: Envoy image tag %q names no version", f, m[1])
				continue
			}
			if v.Less(xds.MinEnvoyVersion) {
				t.Errorf("%s: envoyproxy/envoy:%s is older than the minimum %s", f, m[1], xds.MinEnvoyVersion)
			}
		}
	}
	if found < 4 {
		t.Errorf("found %d Envoy images in deploy/, want the compose edge, two sidecars and the Kubernetes edge", found)
	}
}

// /debug/xds lives on the private admin listener: xds nodes reads it there
// by default, and pointed at a server without it (the public listener
// 404s every /debug path) it says where to look.
func TestXDSNodesReadsThePrivateAdminListener(t *testing.T) {
	f := newRootCmd(strings.NewReader(""), io.Discard, io.Discard)
	c, _, err := f.Find([]string{"xds", "nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Flags().Lookup("admin-address").DefValue; got != controlplane.DefaultAdminPrivateListen {
		t.Errorf("--admin-address defaults to %s, want the private listener %s", got, controlplane.DefaultAdminPrivateListen)
	}
	public := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(public.Close)
	r := runArgs("", "xds", "nodes", "--admin-address", public.URL)
	if r.code != exitError || !strings.Contains(r.stderr, "404") || !strings.Contains(r.stderr, "--admin-private-listen") {
		t.Errorf("xds nodes against a server without /debug/xds: exit %d, stderr %q", r.code, r.stderr)
	}
}

// A node's NACKs are on its row: how many, how long ago the last one, and
// its error.
func TestXDSNodesShowsNACKs(t *testing.T) {
	xdsAddr, admin := xdsWithAdmin(t)
	conn := grpctest.Dial(t, xdsAddr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := adsclient.Open(ctx, conn, envoyEdge("bad-edge", 1, 40), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(resourcev3.ClusterType); err != nil {
		t.Fatal(err)
	}
	u, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Nack(u, "Error adding/updating cluster(s) tenantmesh-authz: something Envoy dislikes"); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^bad-edge\s+edge\s+<none>\s+edge\s+<none>\s+envoy\s+1\.40\.0\s+1\s+no\s+1\s+\d+s ago\s+Error adding/updating cluster\(s\) tenantmesh-authz: something Envoy dislikes$`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := runArgs("", "xds", "nodes", "--admin-address", admin)
		if r.code == 0 && row.MatchString(r.stdout) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no row with the NACK:\n%s%s", r.stdout, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNACKColumnsSayWhatWasIgnored(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	long := strings.Repeat("x", 100)
	got := nackColumns(xds.NACKStats{NACKs: 3, NACKsIgnored: 1, LastNACK: &at, LastNACKError: long, LastNACKIgnored: "rate_limited"}, at.Add(90*time.Second))
	want := []string{"3 (1 ignored)", "1m30s ago", "[ignored: rate_limited] " + strings.Repeat("x", 80) + "…"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("nackColumns = %q, want %q", got, want)
	}
}
