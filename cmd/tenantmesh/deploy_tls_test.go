package main

import (
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// issued is one certificate directory of deploy/certs.sh.
type issued struct {
	kind   string // certs subcommand: server, edge, sidecar, ratelimit
	args   []string
	owner  string // uid:gid of chown -R
	tenant string
	svc    string
	dns    []string
}

// certsScript reads deploy/certs.sh: which certificate goes into which
// /tls directory, and who owns it.
func certsScript(t *testing.T) map[string]*issued {
	t.Helper()
	out := map[string]*issued{}
	for n, args := range scriptCommands(t, "certs.sh") {
		if len(args) < 2 || args[0] != "certs" || args[1] == "ca" {
			continue
		}
		dir := flagValue(args, "out")
		if !strings.HasPrefix(dir, "/tls/") {
			t.Fatalf("certs.sh line %d writes %q, outside the tls volume", n, dir)
		}
		out[dir] = &issued{kind: args[1], args: args, tenant: flagValue(args, "tenant"), svc: flagValue(args, "service"),
			dns: strings.Split(flagValue(args, "dns"), ",")}
	}
	for _, line := range strings.Split(readFile(t, filepath.Join(deployDir, "certs.sh")), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "chown" && f[1] == "-R" {
			if c, ok := out[f[3]]; ok {
				c.owner = f[2]
			} else {
				t.Errorf("certs.sh chowns %s, which it does not issue", f[3])
			}
		}
	}
	for dir, c := range out {
		if c.owner == "" {
			t.Errorf("certs.sh leaves %s to root: its reader could not open the key", dir)
		}
	}
	return out
}

// certDir is the /tls directory of a file of the tls volume.
func certDir(t *testing.T, file string) string {
	t.Helper()
	dir := filepath.Dir(file)
	if !strings.HasPrefix(dir, "/tls/") {
		t.Errorf("%s is not in the tls volume", file)
	}
	return dir
}

func mountsTLSReadOnly(s composeService) bool {
	for _, v := range s.Volumes {
		if v == "tls:/tls:ro" {
			return true
		}
	}
	return false
}

func uidOf(owner string) string { u, _, _ := strings.Cut(owner, ":"); return u }

// envoyTLS is the xds_cluster's TLS context of a bootstrap.
func envoyTLS(t *testing.T, name string, b *bootstrapv3.Bootstrap) *tlsv3.UpstreamTlsContext {
	t.Helper()
	ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
	var tc tlsv3.UpstreamTlsContext
	if ts == nil || ts.GetTypedConfig().UnmarshalTo(&tc) != nil {
		t.Fatalf("envoy service %s: the xds cluster has no TLS transport socket", name)
	}
	return &tc
}

// TestComposeMutualTLS follows every xDS client of the compose file to its
// certificate: the files its bootstrap (or environment) names are in a
// directory certs.sh issues for that identity, owned by the user the
// container runs as; the control plane serves mutual TLS with a server
// certificate for the name the clients dial.
func TestComposeMutualTLS(t *testing.T) {
	w := loadComposeWorld(t)
	certs := certsScript(t)

	// The control plane: mutual TLS from /tls/server, owned by the image's
	// user (deploy/Dockerfile: USER 65532).
	serve := w.serveArgs
	files := map[string]string{}
	for _, f := range []string{"xds-tls-cert", "xds-tls-key", "xds-tls-client-ca"} {
		if files[f] = flagValue(serve, f); files[f] == "" {
			t.Fatalf("serve has no --%s: xDS would be plaintext", f)
		}
	}
	server := certs[certDir(t, files["xds-tls-cert"])]
	if server == nil || server.kind != "server" || uidOf(server.owner) != "65532" || !mountsTLSReadOnly(w.c.Services["tenantmesh"]) {
		t.Fatalf("serve's certificate %s: issued %+v; want a certs server directory owned by 65532, mounted read-only", files["xds-tls-cert"], server)
	}
	xdsHost := "tenantmesh"
	if !contains(server.dns, xdsHost) {
		t.Errorf("the server certificate's --dns %v lacks %s, the host every client dials", server.dns, xdsHost)
	}

	for name, b := range w.bootstraps {
		s := w.c.Services[name]
		ctx := envoyTLS(t, name, b).GetCommonTlsContext()
		if len(ctx.GetTlsCertificates()) != 1 {
			t.Errorf("envoy service %s presents no client certificate", name)
			continue
		}
		dir := certDir(t, ctx.GetTlsCertificates()[0].GetCertificateChain().GetFilename())
		c := certs[dir]
		if c == nil {
			t.Errorf("envoy service %s reads its certificate from %s, which certs.sh does not issue", name, dir)
			continue
		}
		if ca := ctx.GetValidationContext().GetTrustedCa().GetFilename(); filepath.Dir(ca) != dir {
			t.Errorf("envoy service %s trusts %s, not the CA beside its certificate", name, ca)
		}
		san := ctx.GetValidationContext().GetMatchTypedSubjectAltNames()
		if len(san) != 1 || !contains(server.dns, san[0].GetMatcher().GetExact()) {
			t.Errorf("envoy service %s checks server SAN %v, which the server certificate (%v) does not carry", name, san, server.dns)
		}
		uid := s.Environment["ENVOY_UID"]
		if uid == "" || uid != uidOf(c.owner) || !mountsTLSReadOnly(s) {
			t.Errorf("envoy service %s runs as ENVOY_UID %q, but %s belongs to %s (or the volume is not mounted read-only)", name, uid, dir, c.owner)
		}
		n := translate.NodeFromProto(b.GetNode())
		switch {
		case n.Role == translate.RoleEdge && c.kind != "edge",
			n.Role == translate.RoleSidecar && (c.kind != "sidecar" || c.tenant != n.Tenant || c.svc != n.Service):
			t.Errorf("envoy service %s (%+v) holds the certificate of %v", name, n, c.args)
		}
	}

	// Two Envoys never share a uid: each can read only its own key.
	seen := map[string]string{}
	for name := range w.bootstraps {
		uid := w.c.Services[name].Environment["ENVOY_UID"]
		if other, ok := seen[uid]; ok {
			t.Errorf("envoy services %s and %s both run as uid %s and could read each other's keys", name, other, uid)
		}
		seen[uid] = name
	}

	rl := w.c.Services["ratelimit"]
	e := env(t, rl)
	if e["CONFIG_GRPC_XDS_SERVER_USE_TLS"] != "true" {
		t.Fatal("ratelimit's xDS client is plaintext")
	}
	c := certs[certDir(t, e["CONFIG_GRPC_XDS_CLIENT_TLS_CERT"])]
	if c == nil || c.kind != "ratelimit" || uidOf(rl.User) != uidOf(c.owner) || !mountsTLSReadOnly(rl) {
		t.Errorf("ratelimit runs as %q with certificate %s (%+v)", rl.User, e["CONFIG_GRPC_XDS_CLIENT_TLS_CERT"], c)
	}
	if h, _, _ := strings.Cut(e["CONFIG_GRPC_XDS_SERVER_URL"], ":"); !contains(server.dns, h) {
		t.Errorf("ratelimit dials %s, not a name of the server certificate %v", h, server.dns)
	}
	// Everything that needs a certificate waits for certs.sh.
	if !contains(w.c.Services["tenantmesh"].DependsOn, "certs") {
		t.Error("tenantmesh does not wait for the certs job")
	}
}

// cmCertificate and cmIssuer are the fields of cert-manager.io/v1
// Certificate and Issuer that certificates.yaml uses (decoded strictly: a
// misspelt field fails, as the API server would refuse it).
type cmCertificate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		IsCA        bool     `json:"isCA"`
		CommonName  string   `json:"commonName"`
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		DNSNames    []string `json:"dnsNames"`
		URIs        []string `json:"uris"`
		Usages      []string `json:"usages"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type cmIssuer struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SelfSigned *struct{} `json:"selfSigned"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca"`
	} `json:"spec"`
}

// secretAt is the cert-manager Certificate whose Secret the pod mounts at
// the directory of file.
func secretAt(t *testing.T, objs *k8sObjects, d *appsv1.Deployment, file string) *cmCertificate {
	t.Helper()
	c := container(t, d)
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) != m.MountPath {
			continue
		}
		if m.SubPath != "" {
			t.Errorf("%s mounts %s with subPath: the kubelet never updates those, so renewals would not arrive", d.Name, m.MountPath)
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				for _, crt := range objs.certs {
					if crt.Spec.SecretName == v.Secret.SecretName {
						return crt
					}
				}
				t.Fatalf("%s mounts Secret %s, which no Certificate of certificates.yaml writes", d.Name, v.Secret.SecretName)
			}
		}
	}
	t.Fatalf("%s: %s is not in a mounted Secret", d.Name, file)
	return nil
}

// TestKubernetesMutualTLS: the control plane serves xDS over mutual TLS
// with a server certificate for the name the edge dials, the edge presents
// a client certificate with an edge SPIFFE ID, and both come from a CA
// Issuer of certificates.yaml.
func TestKubernetesMutualTLS(t *testing.T) {
	kz, objs := loadK8s(t)
	if !contains(kz.Resources, "certificates.yaml") {
		t.Fatal("kustomization.yaml does not apply certificates.yaml")
	}
	cp := objs.deployments["tenantmesh"]
	args := container(t, cp).Args
	server := secretAt(t, objs, cp, flagValue(args, "xds-tls-cert"))
	for _, f := range []string{"xds-tls-key", "xds-tls-client-ca"} {
		if p := flagValue(args, f); p == "" || filepath.Dir(p) != filepath.Dir(flagValue(args, "xds-tls-cert")) {
			t.Errorf("--%s %q: want the file of the same Secret", f, p)
		}
	}
	if !contains(server.Spec.Usages, "server auth") || !contains(server.Spec.URIs, "spiffe://tenantmesh.local/controlplane") {
		t.Errorf("control plane certificate %s: usages %v, URIs %v", server.Metadata.Name, server.Spec.Usages, server.Spec.URIs)
	}

	edge := objs.deployments["tenantmesh-edge"]
	b, err := bootstrap.ParseYAML([]byte(readFile(t, filepath.Join(k8sDir, "edge-bootstrap.yaml"))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := envoyTLS(t, "tenantmesh-edge", b).GetCommonTlsContext()
	if len(ctx.GetTlsCertificates()) != 1 {
		t.Fatal("the edge presents no client certificate")
	}
	client := secretAt(t, objs, edge, ctx.GetTlsCertificates()[0].GetCertificateChain().GetFilename())
	if !contains(client.Spec.Usages, "client auth") || len(client.Spec.URIs) != 1 || !strings.HasPrefix(client.Spec.URIs[0], "spiffe://tenantmesh.local/edge/") {
		t.Errorf("edge certificate %s: usages %v, URIs %v", client.Metadata.Name, client.Spec.Usages, client.Spec.URIs)
	}
	san := ctx.GetValidationContext().GetMatchTypedSubjectAltNames()
	if len(san) != 1 || !contains(server.Spec.DNSNames, san[0].GetMatcher().GetExact()) {
		t.Errorf("the edge checks server SAN %v, which the control plane certificate (%v) does not carry", san, server.Spec.DNSNames)
	}
	sc := edge.Spec.Template.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil || sc.RunAsUser == nil || *sc.FSGroup != *sc.RunAsUser {
		t.Error("the edge pod has no fsGroup of its user: Envoy could not read the 0440 key of its Secret")
	}

	// Both from the same CA Issuer, whose CA certificate is a CA.
	for _, crt := range []*cmCertificate{server, client} {
		iss := objs.issuers[crt.Spec.IssuerRef.Name]
		if iss == nil || iss.Spec.CA == nil {
			t.Fatalf("certificate %s: issuer %q is not a CA Issuer of certificates.yaml", crt.Metadata.Name, crt.Spec.IssuerRef.Name)
		}
		if ca := objs.certs[iss.Spec.CA.SecretName]; ca == nil || !ca.Spec.IsCA {
			t.Errorf("issuer %s signs with Secret %s, which no isCA Certificate writes", iss.Metadata.Name, iss.Spec.CA.SecretName)
		}
	}
	if server.Spec.IssuerRef != client.Spec.IssuerRef {
		t.Error("control plane and edge certificates come from different issuers: the client CA would not verify the edge")
	}
}
