package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
	"github.com/tenantmesh/tenantmesh/tenants"
)

// envoySkip says exactly what TestEnvoyEdge covers and how to run it.
const envoySkip = `skipped TestEnvoyEdge: no Envoy binary (set ENVOY_BIN or put envoy on PATH).
It would run serve on an embedded etcd, two demo backends (tenantmesh demo-backend),
and an Envoy edge started from "tenantmesh envoy bootstrap", then check over real HTTP:
401 without credentials; 200 with a dev-issuer token of tenant-a, the backend seeing
x-tenant-id and x-tenant-context; 403 cross_tenant on tenant-b's host; 429 past tenant-a's
limit; 403 tenant_suspended after a tenant change through etcd, without a restart.
Run it with: ENVOY_BIN=/path/to/envoy go test ./integration -run TestEnvoyEdge -v`

// envoyBinary finds Envoy, or skips with skip (what the test would prove).
func envoyBinary(t *testing.T, skip string) string {
	t.Helper()
	if p := os.Getenv("ENVOY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("ENVOY_BIN=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p
	}
	t.Skip(skip)
	return ""
}

// buildCLI builds the tenantmesh binary, so the test uses the very
// commands the compose demo and the README use.
func buildCLI(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	bin := filepath.Join(t.TempDir(), "tenantmesh")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tenantmesh")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cli runs the binary and returns its standard output.
func cli(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tenantmesh %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// startProcess runs a long-lived child, stopped at cleanup; its output is
// logged when the test fails.
func startProcess(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Logf("interrupt %s: %v", name, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("kill %s: %v", name, err)
			}
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

func edgeTenant(id string, backendPort int, limit string) string {
	return `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: ` + id + `}
spec:
  tier: enterprise
  hosts: [` + id + `.api.example.com]
  pathPrefix: true
  routes:
    - name: executive
      match: {pathPrefix: /api/executive/}
      upstream: executive
      roles: [user]
` + limit + `
  upstreams:
    - {name: executive, endpoints: [{address: 127.0.0.1, port: ` + strconv.Itoa(backendPort) + `}]}
`
}

// edgeResult is one HTTP exchange through the edge.
type edgeResult struct {
	status int
	body   []byte
}

func (r edgeResult) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		return ""
	}
	return e.Error.Code
}

// edgeRig is a plane, the tenantmesh CLI, a MeshConfig with the plane's
// addresses and a dev token issuer, and (startEdge) an Envoy edge started
// from "tenantmesh envoy bootstrap".
type edgeRig struct {
	t                 *testing.T
	envoy, bin, dir   string
	p                 *plane
	mesh, key, issuer string
	edgePort          int
	client            *http.Client
}

// newEdgeRig starts the plane; meshExtra are more MeshConfig spec lines.
func newEdgeRig(t *testing.T, envoyBin, meshExtra string) *edgeRig {
	t.Helper()
	r := &edgeRig{t: t, envoy: envoyBin, bin: buildCLI(t), dir: t.TempDir(), client: &http.Client{Timeout: 10 * time.Second}}
	r.p = startPlane(t, configWithoutPreload())
	r.edgePort = ratelimittest.FreePort(t)
	base := filepath.Join(r.dir, "mesh.yaml")
	if err := os.WriteFile(base, []byte(fmt.Sprintf(`apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
  edgePort: %d
  authz: {address: %q}
  controlPlaneAdmin: %q
%s`, r.edgePort, r.p.cfg.AuthzListen, r.p.cfg.AdminListen, meshExtra)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.key, r.issuer = filepath.Join(r.dir, "issuer.pem"), "https://dev-issuer.test"
	r.mesh = cli(t, r.bin, "token", "dev-issuer", "--out", r.key, "--issuer", r.issuer, "--base", base)
	return r
}

// startEnvoy runs an Envoy from a "tenantmesh envoy bootstrap" with args.
func (r *edgeRig) startEnvoy(name string, baseID int, args ...string) {
	r.t.Helper()
	file := filepath.Join(r.dir, name+".yaml")
	args = append([]string{"envoy", "bootstrap", "--xds-address", r.p.cfg.XDSListen,
		"--admin-port", strconv.Itoa(ratelimittest.FreePort(r.t)), "--out", file}, args...)
	cli(r.t, r.bin, args...)
	startProcess(r.t, name, r.envoy, "-c", file, "--base-id", strconv.Itoa(baseID), "--log-level", "warn")
}

func (r *edgeRig) startEdge() {
	r.t.Helper()
	r.startEnvoy("envoy", os.Getpid()%60000, "--node-id", "edge-it", "--role", "edge")
}

// token is a dev-issuer token of tenant with role user.
func (r *edgeRig) token(tenant string) string {
	r.t.Helper()
	return strings.TrimSpace(cli(r.t, r.bin, "token", "issue", "--issuer-key", r.key, "--issuer", r.issuer, "--tenant", tenant, "--roles", "user"))
}

// get sends GET path with Host host to port (the edge when 0), with a
// bearer token auth and extra headers.
func (r *edgeRig) get(port int, host, path, auth string, hdr map[string]string) edgeResult {
	r.t.Helper()
	if port == 0 {
		port = r.edgePort
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Host = host
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return edgeResult{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return edgeResult{status: resp.StatusCode, body: body}
}

// echo decodes a demo backend's answer (nil if it is not one).
func (r edgeResult) echo() *demoEcho {
	var e demoEcho
	if r.status != http.StatusOK || json.Unmarshal(r.body, &e) != nil || e.Backend == "" {
		return nil
	}
	return &e
}

// demoEcho is the part of a demo backend's answer the tests read.
type demoEcho struct {
	Backend string            `json:"backend"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

func TestEnvoyEdge(t *testing.T) {
	rig := newEdgeRig(t, envoyBinary(t, envoySkip), "")
	p, bin, mesh := rig.p, rig.bin, rig.mesh
	portA, portB := ratelimittest.FreePort(t), ratelimittest.FreePort(t)
	startProcess(t, "backend-a", bin, "demo-backend", "--listen", "127.0.0.1:"+strconv.Itoa(portA), "--name", "tenant-a-executive")
	startProcess(t, "backend-b", bin, "demo-backend", "--listen", "127.0.0.1:"+strconv.Itoa(portB), "--name", "tenant-b-executive")
	// A local token bucket: deterministic within one Envoy, no limiter needed.
	limit := "      rateLimit: {local: {requests: 5, per: minute}}"
	tenantA := edgeTenant("tenant-a", portA, limit)
	p.apply(t, mesh, tenantA, edgeTenant("tenant-b", portB, ""))
	rig.startEdge()
	edgePort := rig.edgePort
	token := rig.token("tenant-a")
	doPath := func(host, path, auth string) edgeResult { t.Helper(); return rig.get(0, host, path, auth, nil) }
	do := func(host, auth string) edgeResult { return doPath(host, "/api/executive/summary", auth) }
	// The listener exists once Envoy has its configuration.
	eventually(t, 60*time.Second, func() (bool, string) {
		r := do("tenant-a.api.example.com", "")
		return r.status == http.StatusUnauthorized, fmt.Sprintf("status %d: %s", r.status, r.body)
	})

	if r := do("tenant-a.api.example.com", ""); r.status != 401 || r.errorCode() != "missing_credentials" {
		t.Errorf("no credentials: %d %s, want 401 missing_credentials", r.status, r.body)
	}

	r := do("tenant-a.api.example.com", token)
	echo := r.echo()
	if echo == nil {
		t.Fatalf("tenant-a token: %d %s, want 200 from the backend", r.status, r.body)
	}
	if echo.Backend != "tenant-a-executive" || echo.Headers["x-tenant-id"] != "tenant-a" || echo.Headers["x-tenant-context"] == "" {
		t.Errorf("backend %s saw headers %v: want tenant-a's backend with x-tenant-id and x-tenant-context", echo.Backend, echo.Headers)
	}

	if r := do("tenant-b.api.example.com", token); r.status != 403 || r.errorCode() != "cross_tenant" {
		t.Errorf("tenant-a token on tenant-b: %d %s, want 403 cross_tenant", r.status, r.body)
	}

	// The path form: each tenant's VHDS virtual host is selected by the
	// x-tenantmesh-vhost key, also on the edge's own address with its port.
	anyHost := "127.0.0.1:" + strconv.Itoa(edgePort)
	if r := doPath(anyHost, "/tenants/tenant-a/api/executive/summary", token); r.status != 200 || !strings.Contains(string(r.body), "tenant-a-executive") {
		t.Errorf("tenant-a by path: %d %s, want 200 from tenant-a's backend", r.status, r.body)
	}
	if r := doPath(anyHost, "/tenants/tenant-b/api/executive/summary", token); r.status != 403 || r.errorCode() != "cross_tenant" {
		t.Errorf("tenant-a token on tenant-b's path: %d %s, want 403 cross_tenant", r.status, r.body)
	}
	if r := doPath("tenant-b.api.example.com", "/tenants/tenant-a/api/executive/summary", token); r.status != 404 {
		t.Errorf("tenant-a's mount on tenant-b's host: %d %s, want 404 (the host selects tenant-b)", r.status, r.body)
	}

	limited := false
	for i := 0; i < 10 && !limited; i++ {
		r := do("tenant-a.api.example.com", token)
		limited = r.status == http.StatusTooManyRequests && r.errorCode() == "rate_limited"
	}
	if !limited {
		t.Error("no 429 rate_limited within 10 requests past a limit of 5 a minute")
	}

	// A change in etcd reaches Envoy and authz without a restart.
	p.apply(t, mesh, strings.Replace(tenantA, "tier: enterprise", "tier: enterprise\n  status: suspended", 1), edgeTenant("tenant-b", portB, ""))
	eventually(t, 10*time.Second, func() (bool, string) {
		r := do("tenant-a.api.example.com", token)
		return r.status == 403 && r.errorCode() == "tenant_suspended", fmt.Sprintf("status %d: %s", r.status, r.body)
	})
}

const envoySkipSidecar = `skipped TestEnvoyEdgeThroughSidecar: no Envoy binary (set ENVOY_BIN or put envoy on PATH).
It would run serve, a demo backend as tenant-a's app, and two Envoys from "tenantmesh envoy
bootstrap": a sidecar of tenant-a/executive and an edge, tenant-a's upstream endpoint being the
sidecar's inbound listener (sidecarInboundPort, 15006 by default; a free port here). Then over
real HTTP: edge -> sidecar-inbound -> app is 200 for a tenant-a token, the sidecar's jwt_authn
having verified the x-tenant-context the edge's ext_authz minted; straight to sidecar-inbound
401 without a context and 403 with tenant-b's; sidecar-outbound reaches tenant-a's service.
Run it with: ENVOY_BIN=/path/to/envoy go test ./integration -run TestEnvoyEdgeThroughSidecar -v`

// TestEnvoyEdgeThroughSidecar is the whole request path of a tenant
// service behind a sidecar: the edge authorizes and mints the context, the
// sidecar's inbound listener verifies it before the app sees the request.
func TestEnvoyEdgeThroughSidecar(t *testing.T) {
	envoyBin := envoyBinary(t, envoySkipSidecar)
	inPort, outPort, appPort := ratelimittest.FreePort(t), ratelimittest.FreePort(t), ratelimittest.FreePort(t)
	rig := newEdgeRig(t, envoyBin, fmt.Sprintf("  sidecarInboundPort: %d\n  sidecarOutboundPort: %d\n", inPort, outPort))
	startProcess(t, "app", rig.bin, "demo-backend", "--listen", "127.0.0.1:"+strconv.Itoa(appPort), "--name", "tenant-a-app")
	// tenant-a's executive is the sidecar: the edge reaches it on its inbound port.
	rig.p.apply(t, rig.mesh, edgeTenant("tenant-a", inPort, ""), meshTenant("tenant-b", "http1", ratelimittest.FreePort(t), ""))
	rig.startEnvoy("sidecar", os.Getpid()%60000+2, "--node-id", "sidecar-it", "--role", "sidecar",
		"--tenant", "tenant-a", "--service", "executive", "--app-port", strconv.Itoa(appPort))
	rig.startEdge()

	token := rig.token("tenant-a")
	var echo *demoEcho
	eventually(t, 60*time.Second, func() (bool, string) {
		r := rig.get(0, "tenant-a.api.example.com", "/api/executive/summary", token, nil)
		echo = r.echo()
		return echo != nil && echo.Backend == "tenant-a-app", fmt.Sprintf("status %d: %s", r.status, r.body)
	})
	ctxA := echo.Headers["x-tenant-context"]
	if echo.Headers["x-tenant-id"] != "tenant-a" || ctxA == "" || echo.Path != "/api/executive/summary" {
		t.Errorf("app saw %s with headers %v: want x-tenant-id tenant-a and the context the sidecar verified", echo.Path, echo.Headers)
	}
	if r := rig.get(inPort, "tenant-a-executive", "/work", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("sidecar-inbound without a context: %d %s, want 401", r.status, r.body)
	}
	ctxB := mintContext(t, rig.p, "tenant-b")
	if r := rig.get(inPort, "tenant-a-executive", "/work", "", map[string]string{"x-tenant-context": ctxB}); r.status != http.StatusForbidden {
		t.Errorf("sidecar-inbound with tenant-b's context: %d %s, want 403", r.status, r.body)
	}
	// The app's own call, propagating the context it received, goes out
	// through sidecar-outbound to tenant-a's executive (this sidecar again).
	if r := rig.get(outPort, "executive", "/again", "", map[string]string{"x-tenant-context": ctxA}); r.echo() == nil || r.echo().Path != "/again" {
		t.Errorf("sidecar-outbound to executive: %d %s, want the app's answer", r.status, r.body)
	}
}

const envoySkipShared = `skipped TestEnvoySharedFromTenantHost: no Envoy binary (set ENVOY_BIN or put envoy on PATH).
It would run serve, demo backends for tenant-a and tenant-b (each with a route on "/") and for
a shared service geo (feature maps: tenant-a only), and an Envoy edge, then check over real
HTTP: on tenant-a's own host /shared/geo/... reaches geo with the prefix rewritten and
x-tenant-id tenant-a; on tenant-b's host it is a JSON 404, never tenant-b's backend; on another
host tenant-b's token gets 403 missing_feature; and once tenant-a's own route drained its local
bucket, its shared calls get 429 too (one bucket, from any host).
Run it with: ENVOY_BIN=/path/to/envoy go test ./integration -run TestEnvoySharedFromTenantHost -v`

// webTenant has a route on "/" of its own host.
func webTenant(id string, port int, extra string) string {
	return `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: ` + id + `}
spec:
  tier: enterprise
  hosts: [` + id + `.api.example.com]
` + extra + `  routes:
    - {name: web, match: {pathPrefix: /}, upstream: web, roles: [user]}
  upstreams:
    - {name: web, endpoints: [{address: 127.0.0.1, port: ` + strconv.Itoa(port) + `}]}
`
}

// sharedHostManifests are TestEnvoySharedFromTenantHost's objects: geo
// (feature maps), tenant-a (maps, 8 requests a minute locally), tenant-b.
func sharedHostManifests(portA, portB, portGeo int) []string {
	return []string{fmt.Sprintf(`apiVersion: tenantmesh.io/v1alpha1
kind: SharedService
metadata: {name: geo}
spec:
  endpoints: [{address: 127.0.0.1, port: %d}]
  features: [maps]
`, portGeo),
		webTenant("tenant-a", portA, "  features: [maps]\n  rateLimits: {local: {requests: 8, per: minute}}\n"),
		webTenant("tenant-b", portB, "")}
}

// TestEnvoyManifestsValid runs without Envoy: the objects the Envoy tests
// apply decode and validate, so where Envoy exists they fail only on what
// Envoy does.
func TestEnvoyManifestsValid(t *testing.T) {
	docs := append(sharedHostManifests(9001, 9002, 9003), edgeTenant("tenant-c", 9004, "      rateLimit: {local: {requests: 5, per: minute}}"),
		meshTenant("tenant-d", "http1", 9005, ""))
	objs, err := tenants.Decode("envoy-tests.yaml", []byte(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(docs) {
		t.Fatalf("decoded %d objects from %d documents", len(objs), len(docs))
	}
}

// TestEnvoySharedFromTenantHost: a request to a tenant's host selects the
// tenant's virtual host, so the shared mounts must be there too — and
// must never fall through to the tenant's own route on "/".
func TestEnvoySharedFromTenantHost(t *testing.T) {
	rig := newEdgeRig(t, envoyBinary(t, envoySkipShared), "")
	portA, portB, portGeo := ratelimittest.FreePort(t), ratelimittest.FreePort(t), ratelimittest.FreePort(t)
	for name, port := range map[string]int{"tenant-a-web": portA, "tenant-b-web": portB, "geo": portGeo} {
		startProcess(t, name, rig.bin, "demo-backend", "--listen", "127.0.0.1:"+strconv.Itoa(port), "--name", name)
	}
	rig.p.apply(t, append([]string{rig.mesh}, sharedHostManifests(portA, portB, portGeo)...)...)
	rig.startEdge()
	tokA, tokB := rig.token("tenant-a"), rig.token("tenant-b")
	hostA, hostB, other := "tenant-a.api.example.com", "tenant-b.api.example.com", "127.0.0.1:"+strconv.Itoa(rig.edgePort)

	eventually(t, 60*time.Second, func() (bool, string) {
		r := rig.get(0, hostA, "/shared/geo/lookup", tokA, nil)
		e := r.echo()
		return e != nil && e.Backend == "geo", fmt.Sprintf("status %d: %s", r.status, r.body)
	})
	if e := rig.get(0, hostA, "/shared/geo/lookup", tokA, nil).echo(); e == nil || e.Path != "/lookup" || e.Headers["x-tenant-id"] != "tenant-a" {
		t.Errorf("geo from tenant-a's host saw %+v: want /lookup for x-tenant-id tenant-a", e)
	}
	if e := rig.get(0, hostA, "/page", tokA, nil).echo(); e == nil || e.Backend != "tenant-a-web" {
		t.Errorf("tenant-a's own route: %+v", e)
	}
	for _, c := range []struct{ name, host, tok string }{
		{"tenant-b (not entitled) on its host", hostB, tokB},
		{"tenant-a's token on tenant-b's host", hostB, tokA},
	} {
		if r := rig.get(0, c.host, "/shared/geo/lookup", c.tok, nil); r.status != http.StatusNotFound || r.errorCode() != "not_found" {
			t.Errorf("%s: %d %s, want the JSON 404, not tenant-b's backend", c.name, r.status, r.body)
		}
	}
	if e := rig.get(0, other, "/shared/geo/lookup", tokA, nil).echo(); e == nil || e.Backend != "geo" {
		t.Errorf("geo from another host: %+v", e)
	}
	if r := rig.get(0, other, "/shared/geo/lookup", tokB, nil); r.status != http.StatusForbidden || r.errorCode() != "missing_feature" {
		t.Errorf("tenant-b on another host: %d %s, want 403 missing_feature", r.status, r.body)
	}

	// Drain tenant-a's bucket (8 a minute) on its own route; its shared
	// calls spend the same bucket, from its host and from any other.
	drained := false
	for i := 0; i < 20 && !drained; i++ {
		r := rig.get(0, hostA, "/page", tokA, nil)
		drained = r.status == http.StatusTooManyRequests
	}
	if !drained {
		t.Fatal("tenant-a's route never answered 429 past 8 requests a minute")
	}
	for _, h := range []string{hostA, other} {
		if r := rig.get(0, h, "/shared/geo/lookup", tokA, nil); r.status != http.StatusTooManyRequests || r.errorCode() != "rate_limited" {
			t.Errorf("shared call on %s after tenant-a's bucket ran out: %d %s, want 429 rate_limited", h, r.status, r.body)
		}
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s; last: %s", timeout, last)
}
