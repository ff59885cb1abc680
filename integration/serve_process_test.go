package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServeProcess builds cmd/tenantmesh and runs `tenantmesh serve` as a
// child process on its own embedded etcd — what `make run` starts — so its
// memory can be measured apart from the benchmark's client and bookkeeping.
// The child inherits the environment; TENANTMESH_SCALE_GOMEMLIMIT sets
// GOMEMLIMIT for the child only.
func startServeProcess(t testing.TB) *plane {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tenantmesh")
	build := exec.Command("go", "build", "-o", bin, "github.com/tenantmesh/tenantmesh/cmd/tenantmesh")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := &plane{}
	p.cfg.DataDir = filepath.Join(dir, "data")
	p.cfg.EmbeddedEtcdListen, p.cfg.EmbeddedEtcdPeerListen = addr(t), addr(t)
	p.cfg.XDSListen, p.cfg.AuthzListen, p.cfg.AdminListen, p.cfg.AdminPrivateListen = addr(t), addr(t), addr(t), addr(t)
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--log-level", "warn",
		"--data-dir", p.cfg.DataDir,
		"--embedded-etcd-listen", p.cfg.EmbeddedEtcdListen,
		"--embedded-etcd-peer-listen", p.cfg.EmbeddedEtcdPeerListen,
		"--xds-listen", p.cfg.XDSListen,
		"--authz-listen", p.cfg.AuthzListen,
		"--admin-listen", p.cfg.AdminListen,
		"--admin-private-listen", p.cfg.AdminPrivateListen)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	if v := os.Getenv("TENANTMESH_SCALE_GOMEMLIMIT"); v != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	p.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.stop = func() error {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal serve: %w", err)
		}
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			if err := cmd.Process.Kill(); err != nil {
				return fmt.Errorf("serve ignored SIGTERM for 30s; kill: %w", err)
			}
			return errors.New("serve ignored SIGTERM for 30s; killed")
		}
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("serve: %v\n%s", err, tail(logPath))
		}
		if err := logFile.Close(); err != nil {
			t.Logf("close serve log: %v", err)
		}
	})
	waitReady(t, "http://"+p.cfg.AdminListen+"/readyz", exited, logPath)

	p.connect(t)
	return p
}

// waitReady polls /readyz until it answers 200, failing early (with the
// log's tail) if the process exits.
func waitReady(t testing.TB, url string, exited <-chan error, logPath string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("serve exited before it was ready: %v\n%s", err, tail(logPath))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			if cerr := resp.Body.Close(); cerr != nil {
				t.Logf("close readyz body: %v", cerr)
			}
			if resp.StatusCode == http.StatusOK {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("serve not ready at %s within 60s\n%s", url, tail(logPath))
}

// tail is the end of a log file, for failure messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// procStatusMiB reads a VmRSS/VmHWM-style line (in kB) from
// /proc/<pid>/status; pid 0 is this process.
func procStatusMiB(t testing.TB, pid int, field string) float64 {
	who := "self"
	if pid != 0 {
		who = strconv.Itoa(pid)
	}
	data, err := os.ReadFile("/proc/" + who + "/status")
	if err != nil {
		t.Logf("no /proc/%s/status: %v", who, err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Logf("%s: %v", line, err)
				return 0
			}
			return float64(kb) / 1024
		}
	}
	return 0
}
