package bootstrap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

const td = "test.local"

// mtlsServer is a gRPC server option for TLS with the dev CA's server
// certificate for 127.0.0.1, requiring client certificates of the CA.
func mtlsServer(t *testing.T, ca *devca.CA) grpc.ServerOption {
	t.Helper()
	l, err := ca.Issue(devca.Request{ID: identity.ControlPlane(td), IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usage: devca.ServerAuth})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}))
}

// TestGRPCBootstrapMutualTLS: grpc-go, built from the generated bootstrap
// with tls channel credentials (gRFC A65), completes mutual TLS with a
// server that requires a client certificate of the CA and presents the
// certificate's identity.
func TestGRPCBootstrapMutualTLS(t *testing.T) {
	ca, err := devca.NewCA(td, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := ca.IssueTo(dir, devca.Request{ID: identity.GRPC(td, "grpc-client-1"), Usage: devca.ClientAuth}); err != nil {
		t.Fatal(err)
	}
	addr, reqs, peers := fakeADSWithPeers(t, mtlsServer(t, ca))
	o := grpcOptions()
	o.XDSAddress = addr
	o.TLS = &TLSFiles{CA: filepath.Join(dir, devca.CACertFile), Cert: filepath.Join(dir, devca.CertFile), Key: filepath.Join(dir, devca.KeyFile)}
	out, err := GRPC(o)
	if err != nil {
		t.Fatal(err)
	}
	grpcGoClient(t, out).Connect()
	select {
	case req := <-reqs:
		if req.GetNode().GetId() != "grpc-client-1" {
			t.Errorf("node %v", req.GetNode())
		}
		if id := <-peers; id != "spiffe://test.local/grpc/grpc-client-1" {
			t.Errorf("grpc-go presented identity %q, want spiffe://test.local/grpc/grpc-client-1", id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("grpc-go never opened an ADS stream over mutual TLS")
	}

	fixed := grpcOptions()
	fixed.TLS = &TLSFiles{CA: "/etc/tenantmesh/tls/ca.crt", Cert: "/etc/tenantmesh/tls/tls.crt", Key: "/etc/tenantmesh/tls/tls.key"}
	g, err := GRPC(fixed)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "grpc-mtls.json", g)
}

// TestGRPCBootstrapWithoutClientCertIsRefused is the control for the test
// above: the same server refuses grpc-go when the bootstrap has only the
// CA, so the success there is the client certificate's doing.
func TestGRPCBootstrapWithoutClientCertIsRefused(t *testing.T) {
	ca, err := devca.NewCA(td, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := ca.IssueTo(dir, devca.Request{ID: identity.GRPC(td, "c"), Usage: devca.ClientAuth}); err != nil {
		t.Fatal(err)
	}
	addr, reqs, _ := fakeADSWithPeers(t, mtlsServer(t, ca))
	o := grpcOptions()
	o.XDSAddress = addr
	o.TLS = &TLSFiles{CA: filepath.Join(dir, devca.CACertFile)}
	out, err := GRPC(o)
	if err != nil {
		t.Fatal(err)
	}
	grpcGoClient(t, out).Connect()
	select {
	case req := <-reqs:
		t.Fatalf("server requiring a client certificate got a stream without one: %v", req.GetNode())
	case <-time.After(2 * time.Second):
	}
}

func TestGRPCBootstrapServerSAN(t *testing.T) {
	o := grpcOptions()
	o.TLS = &TLSFiles{CA: "/ca.crt", ServerSAN: "tenantmesh"}
	if _, err := GRPC(o); err != nil {
		t.Errorf("server SAN equal to the server_uri host: %v", err)
	}
	for _, san := range []string{"other.example.com", "spiffe://tenantmesh.local/controlplane"} {
		o.TLS.ServerSAN = san
		_, err := GRPC(o)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "server_uri") {
			t.Errorf("server SAN %q for grpc-go: %v, want ErrInvalidOptions explaining grpc-go checks the server_uri host", san, err)
		}
	}
}

func ratelimitOptions() Options {
	return Options{NodeID: "ratelimit", Role: RoleRatelimit, XDSAddress: "tenantmesh:18000"}
}

func TestRatelimitEnvironment(t *testing.T) {
	env, err := Ratelimit(ratelimitOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(EnvFile(env)); got != "CONFIG_TYPE=GRPC_XDS_SOTW\nCONFIG_GRPC_XDS_SERVER_URL=tenantmesh:18000\nCONFIG_GRPC_XDS_NODE_ID=ratelimit\n" {
		t.Errorf("plaintext ratelimit environment:\n%s", got)
	}
	o := ratelimitOptions()
	o.TLS = &TLSFiles{CA: "/etc/tenantmesh/tls/ca.crt", Cert: "/etc/tenantmesh/tls/tls.crt", Key: "/etc/tenantmesh/tls/tls.key", ServerSAN: "tenantmesh.tenantmesh-system.svc"}
	env, err = Ratelimit(o)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "ratelimit-mtls.env", EnvFile(env))

	for name, edit := range map[string]func(*Options){
		"spiffe SAN":    func(o *Options) { o.TLS = &TLSFiles{CA: "/ca", ServerSAN: "spiffe://td/controlplane"} },
		"sotw flag":     func(o *Options) { o.SotW = true },
		"cluster":       func(o *Options) { o.Cluster = "x" },
		"tenant":        func(o *Options) { o.Tenant = "tenant-a" },
		"not ratelimit": func(o *Options) { o.Role = translate.RoleEdge },
		"no node id":    func(o *Options) { o.NodeID = "" },
	} {
		o := ratelimitOptions()
		edit(&o)
		if _, err := Ratelimit(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := Envoy(ratelimitOptions()); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Envoy bootstrap for ratelimit: %v", err)
	}
}
