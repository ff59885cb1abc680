package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// The deployments' second half of mutual TLS: the edge's calls to
// ext_authz and to envoyproxy/ratelimit (MeshConfig spec.authz.tls and
// spec.rateLimit.tls), followed from the MeshConfig to the files the edge
// mounts and to the certificates the servers present.

// edgeServiceTLS translates the edge of cat and returns the TLS context of
// its tenantmesh-authz and tenantmesh-ratelimit clusters (nil: none).
func edgeServiceTLS(t *testing.T, cat *tenants.Catalog) map[string]*tlsv3.UpstreamTlsContext {
	t.Helper()
	res, errs, err := translate.Translate(cat, translate.Node{Role: translate.RoleEdge})
	if err != nil || len(errs) > 0 {
		t.Fatalf("edge translation: %v %v", err, errs)
	}
	out := map[string]*tlsv3.UpstreamTlsContext{translate.AuthzClusterName: nil, translate.RateLimitClusterName: nil}
	for _, r := range res.Clusters {
		c := r.(*clusterv3.Cluster)
		if _, ok := out[c.GetName()]; !ok || c.GetTransportSocket() == nil {
			continue
		}
		var ctx tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx); err != nil {
			t.Fatalf("cluster %s: %v", c.GetName(), err)
		}
		out[c.GetName()] = &ctx
	}
	return out
}

// trustDomainOf is the --trust-domain of certs.sh's `certs ca` line.
func trustDomainOf(t *testing.T) string {
	t.Helper()
	for _, args := range scriptCommands(t, "certs.sh") {
		if len(args) > 1 && args[0] == "certs" && args[1] == "ca" {
			if td := flagValue(args, "trust-domain"); td != "" {
				return td
			}
			return identity.DefaultTrustDomain
		}
	}
	t.Fatal("certs.sh creates no CA")
	return ""
}

// sansOf is every SAN a certificate of certs.sh carries: its SPIFFE ID
// and its --dns names and --ip addresses.
func sansOf(t *testing.T, c *issued, td string) []string {
	t.Helper()
	var id identity.ID
	switch c.kind {
	case "server":
		id = identity.ControlPlane(td)
	case "ratelimit":
		id = identity.Ratelimit(td, c.args[2])
	default:
		t.Fatalf("certs %s issues no server certificate", c.kind)
	}
	out := append([]string{id.String()}, c.dns...)
	if ips := flagValue(c.args, "ip"); ips != "" {
		out = append(out, strings.Split(ips, ",")...)
	}
	return out
}

// serviceTLSFiles checks one service cluster's client side: mutual TLS
// from one certificate directory (CA beside the certificate), ALPN h2, and
// a SAN matcher whose value is in serverSANs. It returns the directory.
func serviceTLSFiles(t *testing.T, cluster string, ctx *tlsv3.UpstreamTlsContext, serverSANs []string) string {
	t.Helper()
	if ctx == nil {
		t.Fatalf("the edge's %s cluster has no TLS: the MeshConfig lacks its tls field", cluster)
	}
	common := ctx.GetCommonTlsContext()
	certs := common.GetTlsCertificates()
	if len(certs) != 1 {
		t.Fatalf("%s: the edge presents no client certificate, but the server requires one", cluster)
	}
	dir := filepath.Dir(certs[0].GetCertificateChain().GetFilename())
	for what, f := range map[string]string{"key": certs[0].GetPrivateKey().GetFilename(), "trusted CA": common.GetValidationContext().GetTrustedCa().GetFilename()} {
		if filepath.Dir(f) != dir {
			t.Errorf("%s: %s %s is not beside the certificate in %s", cluster, what, f, dir)
		}
	}
	if a := common.GetAlpnProtocols(); len(a) != 1 || a[0] != "h2" {
		t.Errorf("%s: ALPN %v, want [h2]", cluster, a)
	}
	san := common.GetValidationContext().GetMatchTypedSubjectAltNames()
	if len(san) != 1 || !contains(serverSANs, san[0].GetMatcher().GetExact()) {
		t.Errorf("%s: the edge checks SAN %v, which the server's certificate (%v) does not carry", cluster, san, serverSANs)
	}
	return dir
}

// TestComposeServiceMutualTLS: serve's ext_authz and ratelimit's gRPC
// port require client certificates, and the edge's clusters (from
// meshconfig.yaml) present the edge's own, which it can read, and check
// SANs the servers' certificates carry.
func TestComposeServiceMutualTLS(t *testing.T) {
	w := loadComposeWorld(t)
	certs := certsScript(t)
	td := trustDomainOf(t)
	if contains(w.serveArgs, "--authz-insecure-plaintext") {
		t.Error("serve still runs ext_authz in plaintext (--authz-insecure-plaintext)")
	}
	authzCert := flagValue(w.serveArgs, "authz-tls-cert")
	server := certs[certDir(t, authzCert)]
	if server == nil || server.kind != "server" {
		t.Fatalf("serve's ext_authz certificate %q is not a certs server directory", authzCert)
	}
	for _, f := range []string{"authz-tls-key", "authz-tls-client-ca"} {
		if p := flagValue(w.serveArgs, f); p == "" || filepath.Dir(p) != filepath.Dir(authzCert) {
			t.Errorf("serve --%s %q: want the file beside --authz-tls-cert (mutual TLS needs the client CA)", f, p)
		}
	}

	rl := env(t, w.c.Services["ratelimit"])
	if rl["GRPC_SERVER_USE_TLS"] != "true" || rl["GRPC_CLIENT_TLS_CACERT"] == "" {
		t.Fatalf("ratelimit's gRPC port is not mutual TLS: GRPC_SERVER_USE_TLS=%q GRPC_CLIENT_TLS_CACERT=%q", rl["GRPC_SERVER_USE_TLS"], rl["GRPC_CLIENT_TLS_CACERT"])
	}
	rlDir := certDir(t, rl["GRPC_SERVER_TLS_CERT"])
	rlCert := certs[rlDir]
	if rlCert == nil || rlCert.kind != "ratelimit" || filepath.Dir(rl["GRPC_SERVER_TLS_KEY"]) != rlDir {
		t.Fatalf("ratelimit serves with %q/%q, not a certs ratelimit directory", rl["GRPC_SERVER_TLS_CERT"], rl["GRPC_SERVER_TLS_KEY"])
	}
	// Go's TLS client (and a DNS SAN match) needs the name the edge dials.
	if host, _, _ := net.SplitHostPort(w.mesh.Spec.RateLimit.Address); !contains(rlCert.dns, host) {
		t.Errorf("ratelimit's certificate (--dns %v) is not issued for %s, the host of rateLimit.address", rlCert.dns, host)
	}

	cat := tenants.NewCatalog(tenants.Input{Revision: 1, Mesh: w.mesh, Tenants: w.tenants}, nil)
	tlsOf := edgeServiceTLS(t, cat)
	edge := w.c.Services["envoy-edge"]
	for cluster, sans := range map[string][]string{
		translate.AuthzClusterName:     sansOf(t, server, td),
		translate.RateLimitClusterName: sansOf(t, rlCert, td),
	} {
		dir := serviceTLSFiles(t, cluster, tlsOf[cluster], sans)
		c := certs[dir]
		if c == nil || c.kind != "edge" || uidOf(c.owner) != edge.Environment["ENVOY_UID"] || !mountsTLSReadOnly(edge) {
			t.Errorf("%s: the edge's client certificate %s (%+v) is not an edge certificate envoy-edge (ENVOY_UID %s) mounts and may read",
				cluster, dir, c, edge.Environment["ENVOY_UID"])
		}
	}
}

// TestKubernetesServiceMutualTLS: the same for the Kubernetes manifests:
// serve's ext_authz from the control plane's Secret with its client CA;
// the edge's clusters present the edge's Secret and check the SPIFFE IDs
// (or names) of the control plane's and ratelimit's Certificates, which
// the same CA issues.
func TestKubernetesServiceMutualTLS(t *testing.T) {
	_, objs := loadK8s(t)
	cp := objs.deployments["tenantmesh"]
	args := container(t, cp).Args
	if contains(args, "--authz-insecure-plaintext") {
		t.Error("the control plane still runs ext_authz in plaintext (--authz-insecure-plaintext)")
	}
	server := secretAt(t, objs, cp, flagValue(args, "authz-tls-cert"))
	for _, f := range []string{"authz-tls-key", "authz-tls-client-ca"} {
		if p := flagValue(args, f); p == "" || filepath.Dir(p) != filepath.Dir(flagValue(args, "authz-tls-cert")) {
			t.Errorf("--%s %q: want the file of the same Secret", f, p)
		}
	}
	var rl *cmCertificate
	for _, c := range objs.certs {
		for _, u := range c.Spec.URIs {
			if strings.HasPrefix(u, "spiffe://tenantmesh.local/ratelimit/") {
				rl = c
			}
		}
	}
	if rl == nil || !contains(rl.Spec.Usages, "server auth") || !contains(rl.Spec.Usages, "client auth") || rl.Spec.IssuerRef != server.Spec.IssuerRef {
		t.Fatalf("no ratelimit Certificate for both its xDS client and its gRPC server from the control plane's issuer: %+v", rl)
	}

	docs, err := tenants.Load(filepath.Join(k8sDir, "meshconfig.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mesh := tenants.DefaultedMeshConfig(docs[0].Object.(*tenants.MeshConfig))
	if host, _, _ := net.SplitHostPort(mesh.Spec.RateLimit.Address); !contains(rl.Spec.DNSNames, host) {
		t.Errorf("ratelimit's Certificate (%v) is not issued for %s, the host of rateLimit.address", rl.Spec.DNSNames, host)
	}
	tlsOf := edgeServiceTLS(t, tenants.NewCatalog(tenants.Input{Revision: 1, Mesh: mesh}, nil))
	edge := objs.deployments["tenantmesh-edge"]
	for cluster, crt := range map[string]*cmCertificate{translate.AuthzClusterName: server, translate.RateLimitClusterName: rl} {
		dir := serviceTLSFiles(t, cluster, tlsOf[cluster], append(append([]string{}, crt.Spec.URIs...), crt.Spec.DNSNames...))
		client := secretAt(t, objs, edge, filepath.Join(dir, "tls.crt"))
		if !contains(client.Spec.Usages, "client auth") || client.Spec.IssuerRef != server.Spec.IssuerRef {
			t.Errorf("%s: the edge presents Secret %s (usages %v, issuer %v)", cluster, client.Spec.SecretName, client.Spec.Usages, client.Spec.IssuerRef)
		}
	}
}

// TestDockerfileServesMutualTLS: the image's default command serves xDS
// and ext_authz over mutual TLS, and the public admin listener (the
// sidecars' JWKS) over HTTPS, from one mounted Secret, and parses.
func TestDockerfileServesMutualTLS(t *testing.T) {
	df := strings.ReplaceAll(readFile(t, filepath.Join(deployDir, "Dockerfile")), "\\\n", "")
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])\s*$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no exec-form CMD")
	}
	var args []string
	if err := json.Unmarshal([]byte(m[1]), &args); err != nil {
		t.Fatalf("CMD %s: %v", m[1], err)
	}
	checkCommandLine(t, "Dockerfile CMD", args)
	if contains(args, "--authz-insecure-plaintext") {
		t.Error("the image serves ext_authz in plaintext (--authz-insecure-plaintext)")
	}
	dir := filepath.Dir(flagValue(args, "xds-tls-cert"))
	for _, f := range []string{"xds-tls-key", "xds-tls-client-ca", "authz-tls-cert", "authz-tls-key", "authz-tls-client-ca", "admin-tls-cert", "admin-tls-key"} {
		if p := flagValue(args, f); p == "" || filepath.Dir(p) != dir {
			t.Errorf("CMD --%s %q: want a file of %s, beside --xds-tls-cert", f, p, dir)
		}
	}
}

// TestNoPlaintextEscapeHatchInDeployments: no deployment file still passes
// --authz-insecure-plaintext (the flag stays for setups of one's own).
func TestNoPlaintextEscapeHatchInDeployments(t *testing.T) {
	err := filepath.WalkDir(deployDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(readFile(t, path), "authz-insecure-plaintext") {
			t.Errorf("%s mentions --authz-insecure-plaintext", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
