// Package grpctest starts real gRPC servers and clients on loopback for
// tests, so each test that needs one does not spell out the listener,
// the serve goroutine and the cleanups again.
package grpctest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Serve starts a gRPC server with opts on a free loopback port, lets
// register add its services, and stops it when the test ends. It returns
// the address to dial.
func Serve(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) string {
	t.Helper()
	g := grpc.NewServer(opts...)
	register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := g.Serve(lis); err != nil {
			t.Logf("grpc serve: %v", err)
		}
	}()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// Dial connects to addr with creds (nil: plaintext) and closes the
// connection when the test ends.
func Dial(t testing.TB, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Logf("close conn: %v", err)
		}
	})
	return conn
}
