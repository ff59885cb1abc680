// Package ratelimittest starts the real global rate limiter for tests:
// redis-server and envoyproxy/ratelimit on free loopback ports, installed
// by scripts/install-ratelimit.sh (which `make test` runs).
package ratelimittest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// find returns the path of a binary from PATH or the repository's
// .tools/bin. Outside CI a missing binary skips the test with the command
// that installs it; in CI it fails, so a missing install step is loud.
func find(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	_, file, _, ok := runtime.Caller(0)
	if ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", ".tools", "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found (PATH or .tools/bin): run scripts/install-ratelimit.sh (make test does)", name)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipped: " + msg)
	return ""
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Logf("close probe listener: %v", err)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a started child process with its combined output.
type Process struct {
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	once sync.Once
	done chan struct{}
	// exitErr is the process's exit status, valid once done is closed.
	exitErr error
}

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	p.once.Do(func() {
		if err := p.cmd.Process.Kill(); err != nil {
			return
		}
		<-p.done
	})
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

func start(t testing.TB, addr string, bin string, args []string, env []string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Process{Addr: addr, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait() // a killed child's status is expected; kept for diagnostics
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	return p
}

func waitTCP(t testing.TB, p *Process, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond)
		if err == nil {
			if err := c.Close(); err != nil {
				t.Logf("close probe: %v", err)
			}
			return
		}
		select {
		case <-p.done:
			t.Fatalf("process for %s exited early (%v):\n%s", p.Addr, p.exitErr, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("nothing listens on %s after %v:\n%s", p.Addr, timeout, p.Output())
}

// StartRedis runs a throw-away redis-server (no persistence).
func StartRedis(t testing.TB) *Process {
	t.Helper()
	bin := find(t, "redis-server")
	port := FreePort(t)
	p := start(t, "127.0.0.1:"+strconv.Itoa(port), bin, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--protected-mode", "yes",
	}, nil)
	waitTCP(t, p, 10*time.Second)
	return p
}

// StartRatelimit runs envoyproxy/ratelimit taking its configuration over
// xDS (SotW) from xdsAddr and counting in the Redis at redisAddr. It
// returns once the gRPC port answers.
//
// extraEnv (KEY=VALUE) comes after the defaults and wins over them
// (os/exec keeps the last value of a repeated key): a test turns on TLS
// to the xDS server with the output of bootstrap.Ratelimit, or on its gRPC
// port with GRPC_SERVER_USE_TLS and GRPC_SERVER_TLS_* (the HTTP health
// port stays plaintext, so the readiness wait below still works).
func StartRatelimit(t testing.TB, xdsAddr, redisAddr string, extraEnv ...string) *Process {
	t.Helper()
	bin := find(t, "ratelimit")
	grpcPort, httpPort, debugPort := FreePort(t), FreePort(t), FreePort(t)
	env := []string{
		"CONFIG_TYPE=GRPC_XDS_SOTW",
		"CONFIG_GRPC_XDS_SERVER_URL=" + xdsAddr,
		"CONFIG_GRPC_XDS_NODE_ID=ratelimit-test",
		"CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL=200ms",
		"XDS_CLIENT_BACKOFF_INITIAL_INTERVAL=200ms",
		"XDS_CLIENT_BACKOFF_MAX_INTERVAL=1s",
		"REDIS_SOCKET_TYPE=tcp",
		"REDIS_URL=" + redisAddr,
		"USE_STATSD=false",
		"LOG_LEVEL=warn",
		"HOST=127.0.0.1", "PORT=" + strconv.Itoa(httpPort),
		"GRPC_HOST=127.0.0.1", "GRPC_PORT=" + strconv.Itoa(grpcPort),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT=" + strconv.Itoa(debugPort),
		"LOCAL_CACHE_SIZE_IN_BYTES=0",
	}
	p := start(t, "127.0.0.1:"+strconv.Itoa(grpcPort), bin, nil, append(env, extraEnv...))
	waitTCP(t, p, 20*time.Second)
	health := fmt.Sprintf("http://127.0.0.1:%d/healthcheck", httpPort)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(health)
		if err == nil {
			if cerr := resp.Body.Close(); cerr != nil {
				t.Logf("close health body: %v", cerr)
			}
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
