package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/ratelimittest"
)

func TestDemoBackendEchoesTheRequest(t *testing.T) {
	srv := httptest.NewServer(demoBackendHandler("tenant-a-executive", slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/executive/summary?x=1", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "tenant-a.api.example.com"
	req.Header.Set("X-Tenant-ID", "tenant-a")
	req.Header.Add("X-Forwarded-For", "10.0.0.1")
	req.Header.Add("X-Forwarded-For", "10.0.0.2")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var e echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	want := echo{Backend: "tenant-a-executive", Method: "POST", Host: "tenant-a.api.example.com", Path: "/api/executive/summary", Query: "x=1"}
	if e.Backend != want.Backend || e.Method != want.Method || e.Host != want.Host || e.Path != want.Path || e.Query != want.Query {
		t.Errorf("echo %+v, want %+v", e, want)
	}
	if e.Headers["x-tenant-id"] != "tenant-a" || e.Headers["x-forwarded-for"] != "10.0.0.1, 10.0.0.2" {
		t.Errorf("headers %v: want x-tenant-id tenant-a and both x-forwarded-for values", e.Headers)
	}
}

func TestDemoBackendHealthz(t *testing.T) {
	srv := httptest.NewServer(demoBackendHandler("b", slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func TestDemoBackendServesUntilCancelled(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(ratelimittest.FreePort(t))
	g := &globals{stdout: io.Discard, stderr: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runDemoBackend(ctx, g, addr, "b") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo backend never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo backend did not stop")
	}
}
