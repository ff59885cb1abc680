package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// deployDir is deploy/ from this package's directory.
const deployDir = "../../deploy"

// The compose file is checked, not run: there is no Docker engine where
// these tests run. What can be checked without one is: every mounted file
// exists, every Envoy bootstrap validates and is what deploy/gen.sh
// generates, every tenantmesh command line parses, and addresses and ports
// agree between the services, the MeshConfig, the tenants and the
// bootstraps.

type composeFile struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
		Target     string `json:"target"`
	} `json:"build"`
	Entrypoint  []string          `json:"entrypoint"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	EnvFile     []string          `json:"env_file"`
	User        string            `json:"user"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	NetworkMode string            `json:"network_mode"`
	DependsOn   dependsOn         `json:"depends_on"`
	Profiles    []string          `json:"profiles"`
}

// dependsOn is depends_on in either of its forms: a list of services, or
// a map of service to {condition: ...}.
type dependsOn []string

func (d *dependsOn) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*d = list
		return nil
	}
	var m map[string]struct {
		Condition string `json:"condition"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("depends_on: %w", err)
	}
	for name := range m {
		*d = append(*d, name)
	}
	return nil
}

// env is a service's environment: its env_files (KEY=VALUE lines, # comments)
// under its environment: entries, which win as in compose.
func env(t *testing.T, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range s.EnvFile {
		for _, line := range strings.Split(readFile(t, filepath.Join(deployDir, f)), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("env_file %s: %q is not KEY=VALUE", f, line)
			}
			out[k] = v
		}
	}
	for k, v := range s.Environment {
		out[k] = v
	}
	return out
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(deployDir, "docker-compose.yaml"))), &c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yaml has no services")
	}
	return &c
}

// mounts returns a service's bind mounts as container path → host path
// (relative to deploy/), and fails on named volumes nobody declared.
func mounts(t *testing.T, c *composeFile, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range c.Services[name].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("service %s: volume %q has no container path", name, v)
		}
		if strings.HasPrefix(parts[0], ".") {
			out[parts[1]] = filepath.Join(deployDir, parts[0])
			continue
		}
		if _, ok := c.Volumes[parts[0]]; !ok {
			t.Errorf("service %s: named volume %q is not declared under volumes:", name, parts[0])
		}
	}
	return out
}

// flagValue reads --name=value or --name value from args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkCommandLine resolves args on the real command tree and parses
// their flags: a renamed or removed flag fails here, not in a container.
func checkCommandLine(t *testing.T, where string, args []string) *cobra.Command {
	t.Helper()
	root := newRootCmd(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("%s: %v is not a tenantmesh command (%v)", where, args, err)
		return nil
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %v: %v", where, args, err)
	}
	return cmd
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

func TestComposeFilesAndImages(t *testing.T) {
	c := loadCompose(t)
	dockerfile := readFile(t, filepath.Join(deployDir, "Dockerfile"))
	for name, s := range c.Services {
		for container, host := range mounts(t, c, name) {
			if _, err := os.Stat(host); err != nil {
				t.Errorf("service %s mounts %s at %s: %v", name, host, container, err)
			}
		}
		if s.Build != nil {
			if !strings.Contains(dockerfile, " AS "+s.Build.Target+"\n") {
				t.Errorf("service %s builds target %q, which deploy/Dockerfile does not define", name, s.Build.Target)
			}
			if _, err := os.Stat(filepath.Join(deployDir, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: build file: %v", name, err)
			}
			continue
		}
		if i := strings.LastIndex(s.Image, ":"); i < 0 || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
		for _, dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}
}

// composeCommands are the tenantmesh command lines of the compose file and
// of init.sh (continuation lines joined, shell variables as placeholders).
func composeCommands(t *testing.T, c *composeFile) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, s := range c.Services {
		if s.Build != nil && len(s.Command) > 0 {
			out["service "+name] = s.Command
		}
	}
	for _, name := range []string{"init.sh", "certs.sh"} {
		for n, args := range scriptCommands(t, name) {
			out[fmt.Sprintf("%s line %d", name, n)] = args
		}
	}
	if len(out) < 5 {
		t.Fatalf("found only %d tenantmesh command lines: %v", len(out), out)
	}
	return out
}

// scriptCommands are the tenantmesh command lines of a deploy/ shell
// script by line number, without "tenantmesh" (continuation lines joined,
// shell variables as placeholders).
func scriptCommands(t *testing.T, name string) map[int][]string {
	t.Helper()
	out := map[int][]string{}
	script := strings.ReplaceAll(readFile(t, filepath.Join(deployDir, name)), "\\\n", " ")
	sc := bufio.NewScanner(strings.NewReader(script))
	vars := regexp.MustCompile(`"?\$\{?[a-z_]+\}?"?`)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "tenantmesh ") && !strings.HasPrefix(line, "until tenantmesh ") {
			continue
		}
		line = strings.TrimPrefix(line, "until ")
		line, _, _ = strings.Cut(line, ">") // drop redirections
		line, _, _ = strings.Cut(line, ";")
		line = vars.ReplaceAllString(line, "PLACEHOLDER")
		out[n] = strings.Fields(line)[1:]
	}
	return out
}

func TestComposeCommandLinesParse(t *testing.T) {
	c := loadCompose(t)
	for where, args := range composeCommands(t, c) {
		checkCommandLine(t, where, args)
	}
	// The init job reads what it applies from its mounts.
	m := mounts(t, c, "init")
	for _, p := range regexp.MustCompile(`/deploy/[a-z/.-]+\.(yaml|sh)`).FindAllString(readFile(t, filepath.Join(deployDir, "init.sh")), -1) {
		found := false
		for container, host := range m {
			if rel, ok := strings.CutPrefix(p, container); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
				if _, err := os.Stat(host + rel); err != nil {
					t.Errorf("init.sh reads %s: %v", p, err)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("init.sh reads %s, which the init service does not mount", p)
		}
	}
}

// genLines are deploy/gen.sh's "gen FILE FLAGS..." lines.
func genLines(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(readFile(t, filepath.Join(deployDir, "gen.sh")), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "gen" {
			out[f[1]] = f[2:]
		}
	}
	if len(out) == 0 {
		t.Fatal("deploy/gen.sh has no gen lines")
	}
	return out
}

// TestGeneratedBootstrapsAreCurrent regenerates every bootstrap of
// deploy/gen.sh in-process and compares it with the committed file.
func TestGeneratedBootstrapsAreCurrent(t *testing.T) {
	gen := genLines(t)
	for file, flags := range gen {
		out := filepath.Join(t.TempDir(), "out.yaml")
		r := runArgs("", append([]string{"envoy", "bootstrap", "--out", out}, flags...)...)
		if r.code != 0 {
			t.Errorf("gen %s: exit %d: %s", file, r.code, r.stderr)
			continue
		}
		if want := readFile(t, out); readFile(t, filepath.Join(deployDir, file)) != want {
			t.Errorf("deploy/%s is stale: run deploy/gen.sh", file)
		}
	}
	// No bootstrap without a gen line (it would never be regenerated).
	files, err := filepath.Glob(filepath.Join(deployDir, "envoy", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := gen["envoy/"+filepath.Base(f)]; !ok {
			t.Errorf("deploy/envoy/%s is not generated by deploy/gen.sh", filepath.Base(f))
		}
	}
}

// composeWorld is what the consistency checks need.
type composeWorld struct {
	c          *composeFile
	mesh       *tenants.MeshConfig
	tenants    []*tenants.Tenant
	serveArgs  []string
	bootstraps map[string]*bootstrapv3.Bootstrap // by service
}

func loadComposeWorld(t *testing.T) *composeWorld {
	t.Helper()
	w := &composeWorld{c: loadCompose(t), bootstraps: map[string]*bootstrapv3.Bootstrap{}}
	docs, err := tenants.Load(filepath.Join(deployDir, "meshconfig.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tdocs, err := tenants.Load(filepath.Join(deployDir, "tenants"), nil)
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, tdocs...)
	if err := tenants.ValidateDocuments(docs, nil); err != nil {
		t.Fatalf("deploy manifests do not validate: %v", err)
	}
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *tenants.MeshConfig:
			w.mesh = tenants.DefaultedMeshConfig(o)
		case *tenants.Tenant:
			w.tenants = append(w.tenants, o)
		}
	}
	w.serveArgs = w.c.Services["tenantmesh"].Command
	if len(w.serveArgs) == 0 || w.serveArgs[0] != "serve" || w.mesh == nil || len(w.tenants) < 2 {
		t.Fatalf("compose world incomplete: serve %v, mesh %v, %d tenants", w.serveArgs, w.mesh != nil, len(w.tenants))
	}
	for name, s := range w.c.Services {
		if !strings.HasPrefix(s.Image, "envoyproxy/envoy:") {
			continue
		}
		if !contains(s.Command, "-c") {
			t.Fatalf("envoy service %s: no -c bootstrap", name)
		}
		path := s.Command[indexOf(s.Command, "-c")+1]
		host, ok := mounts(t, w.c, name)[path]
		if !ok {
			t.Fatalf("envoy service %s reads %s, which it does not mount", name, path)
		}
		b, err := bootstrap.ParseYAML([]byte(readFile(t, host)))
		if err != nil {
			t.Fatalf("envoy service %s: %s: %v", name, host, err)
		}
		w.bootstraps[name] = b
	}
	return w
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func TestComposeAddressesAgree(t *testing.T) {
	w := loadComposeWorld(t)
	spec := w.mesh.Spec
	want := map[string]string{
		"MeshConfig authz.address":      "tenantmesh:" + port(t, flagValue(w.serveArgs, "authz-listen")),
		"MeshConfig controlPlaneAdmin":  "tenantmesh:" + port(t, flagValue(w.serveArgs, "admin-listen")),
		"MeshConfig rateLimit.address":  "ratelimit:" + w.c.Services["ratelimit"].Environment["GRPC_PORT"],
		"ratelimit xDS server":          "tenantmesh:" + port(t, flagValue(w.serveArgs, "xds-listen")),
		"envoy-edge publishes edgePort": "10000",
	}
	got := map[string]string{
		"MeshConfig authz.address":      spec.Authz.Address,
		"MeshConfig controlPlaneAdmin":  spec.ControlPlaneAdmin,
		"MeshConfig rateLimit.address":  spec.RateLimit.Address,
		"ratelimit xDS server":          env(t, w.c.Services["ratelimit"])["CONFIG_GRPC_XDS_SERVER_URL"],
		"envoy-edge publishes edgePort": "",
	}
	for _, p := range w.c.Services["envoy-edge"].Ports {
		if parts := strings.Split(p, ":"); len(parts) == 2 && parts[1] == itoa(spec.EdgePort) {
			got["envoy-edge publishes edgePort"] = parts[1]
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if ep := env(t, w.c.Services["ratelimit"])["CONFIG_TYPE"]; ep != "GRPC_XDS_SOTW" {
		t.Errorf("ratelimit CONFIG_TYPE %q, want GRPC_XDS_SOTW", ep)
	}
	xds := "tenantmesh:" + port(t, flagValue(w.serveArgs, "xds-listen"))
	for name, b := range w.bootstraps {
		a := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if got := net.JoinHostPort(a.GetAddress(), itoa(int(a.GetPortValue()))); got != xds {
			t.Errorf("envoy service %s: xDS server %s, want %s", name, got, xds)
		}
	}
}

// TestComposeTenantsReachTheirSidecars follows each tenant upstream: the
// endpoint must be a backend's sidecar inbound port, the sidecar's node
// must be that tenant's service, and its app port the backend's port.
func TestComposeTenantsReachTheirSidecars(t *testing.T) {
	w := loadComposeWorld(t)
	sidecars := map[string]string{} // backend service → sidecar service
	for name, s := range w.c.Services {
		if backend, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			sidecars[backend] = name
		}
	}
	for _, tn := range w.tenants {
		for _, u := range tn.Spec.Upstreams {
			for _, ep := range u.Endpoints {
				sidecar, ok := sidecars[ep.Address]
				if !ok {
					t.Errorf("tenant %s upstream %s: endpoint %s is not a service with a sidecar", tn.ID(), u.Name, ep.Address)
					continue
				}
				if ep.Port != w.mesh.Spec.SidecarInboundPort {
					t.Errorf("tenant %s upstream %s: port %d, want the sidecar inbound port %d", tn.ID(), u.Name, ep.Port, w.mesh.Spec.SidecarInboundPort)
				}
				n := translate.NodeFromProto(w.bootstraps[sidecar].GetNode())
				if n.Role != translate.RoleSidecar || n.Tenant != tn.ID() || n.Service != u.Name {
					t.Errorf("sidecar %s is node %+v, want tenant %s service %s", sidecar, n, tn.ID(), u.Name)
				}
				listen := flagValue(w.c.Services[ep.Address].Command, "listen")
				if host, p, err := net.SplitHostPort(listen); err != nil || host != "127.0.0.1" || p != itoa(n.AppPort) {
					t.Errorf("backend %s listens on %q, want 127.0.0.1:%d (loopback: only its sidecar reaches it)", ep.Address, listen, n.AppPort)
				}
			}
		}
	}
}

// TestComposeConfigTranslates runs the control plane's translation for
// every Envoy of the compose file over the compose MeshConfig and tenants,
// and checks that the listeners land on the ports the compose file uses:
// the edge's on the published port, each sidecar's inbound listener on
// the port the tenants' endpoints name.
func TestComposeConfigTranslates(t *testing.T) {
	w := loadComposeWorld(t)
	cat := tenants.NewCatalog(tenants.Input{Revision: 1, Mesh: w.mesh, Tenants: w.tenants}, nil)
	for name, b := range w.bootstraps {
		node := translate.NodeFromProto(b.GetNode())
		res, errs, err := translate.Translate(cat, node)
		if err != nil || len(errs) > 0 {
			t.Errorf("envoy service %s: translation failed: %v %v", name, err, errs)
			continue
		}
		want, wantPort := translate.EdgeListenerName, w.mesh.Spec.EdgePort
		if node.Role == translate.RoleSidecar {
			want, wantPort = translate.SidecarInboundName, w.mesh.Spec.SidecarInboundPort
		}
		found := false
		for _, r := range res.Listeners {
			l, ok := r.(*listenerv3.Listener)
			if ok && l.GetName() == want {
				found = true
				if p := l.GetAddress().GetSocketAddress().GetPortValue(); int(p) != wantPort {
					t.Errorf("envoy service %s: listener %s on port %d, want %d", name, want, p, wantPort)
				}
			}
		}
		if !found {
			t.Errorf("envoy service %s would receive no listener %s", name, want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
