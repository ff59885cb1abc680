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
)

// envoySkip says exactly what TestEnvoyEdge covers and how to run it.
const envoySkip = `skipped TestEnvoyEdge: no Envoy binary (set ENVOY_BIN or put envoy on PATH).
It would run serve on an embedded etcd, two demo backends (tenantmesh demo-backend),
and an Envoy edge started from "tenantmesh envoy bootstrap", then check over real HTTP:
401 without credentials; 200 with a dev-issuer token of tenant-a, the backend seeing
x-tenant-id and x-tenant-context; 403 cross_tenant on tenant-b's host; 429 past tenant-a's
limit; 403 tenant_suspended after a tenant change through etcd, without a restart.
Run it with: ENVOY_BIN=/path/to/envoy go test ./integration -run TestEnvoyEdge -v`

// envoyBinary finds Envoy, or skips.
func envoyBinary(t *testing.T) string {
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
	t.Skip(envoySkip)
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

func TestEnvoyEdge(t *testing.T) {
	envoy := envoyBinary(t)
	bin := buildCLI(t)
	dir := t.TempDir()

	p := startPlane(t, configWithoutPreload())
	edgePort := ratelimittest.FreePort(t)
	portA, portB := ratelimittest.FreePort(t), ratelimittest.FreePort(t)
	startProcess(t, "backend-a", bin, "demo-backend", "--listen", "127.0.0.1:"+strconv.Itoa(portA), "--name", "tenant-a-executive")
	startProcess(t, "backend-b", bin, "demo-backend", "--listen", "127.0.0.1:"+strconv.Itoa(portB), "--name", "tenant-b-executive")

	// MeshConfig: this plane's addresses plus the dev token issuer.
	base := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(base, []byte(fmt.Sprintf(`apiVersion: tenantmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec:
  edgePort: %d
  authz: {address: %q}
  controlPlaneAdmin: %q
`, edgePort, p.cfg.AuthzListen, p.cfg.AdminListen)), 0o644); err != nil {
		t.Fatal(err)
	}
	key, issuer := filepath.Join(dir, "issuer.pem"), "https://dev-issuer.test"
	mesh := cli(t, bin, "token", "dev-issuer", "--out", key, "--issuer", issuer, "--base", base)
	// A local token bucket: deterministic within one Envoy, no limiter needed.
	limit := "      rateLimit: {local: {requests: 5, per: minute}}"
	tenantA := edgeTenant("tenant-a", portA, limit)
	p.apply(t, mesh, tenantA, edgeTenant("tenant-b", portB, ""))

	bootstrapFile := filepath.Join(dir, "edge.yaml")
	cli(t, bin, "envoy", "bootstrap", "--node-id", "edge-it", "--role", "edge", "--xds-address", p.cfg.XDSListen,
		"--admin-port", strconv.Itoa(ratelimittest.FreePort(t)), "--out", bootstrapFile)
	startProcess(t, "envoy", envoy, "-c", bootstrapFile, "--base-id", strconv.Itoa(os.Getpid()%60000), "--log-level", "warn")

	token := strings.TrimSpace(cli(t, bin, "token", "issue", "--issuer-key", key, "--issuer", issuer, "--tenant", "tenant-a", "--roles", "user"))
	client := &http.Client{Timeout: 10 * time.Second}
	doPath := func(host, path, auth string) edgeResult {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(edgePort)+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return edgeResult{status: -1, body: []byte(err.Error())}
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return edgeResult{status: resp.StatusCode, body: body}
	}
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
	var echo struct {
		Backend string            `json:"backend"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(r.body, &echo); r.status != 200 || err != nil {
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
