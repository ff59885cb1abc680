package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/k8s"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

// composeTenants are deploy/tenants: any tenant does to translate a
// sidecar, whose tenantmesh-jwks cluster depends on the MeshConfig only.
func composeTenants(t *testing.T) []*tenants.Tenant {
	t.Helper()
	docs, err := tenants.Load(filepath.Join(deployDir, "tenants"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*tenants.Tenant
	for _, d := range docs {
		if tn, ok := d.Object.(*tenants.Tenant); ok {
			out = append(out, tn)
		}
	}
	return out
}

var executiveSidecar = translate.Node{Role: translate.RoleSidecar, Tenant: "tenant-a", Service: "executive", AppPort: 8080}

// loadMesh reads and validates the MeshConfig of file.
func loadMesh(t *testing.T, file string) *tenants.MeshConfig {
	t.Helper()
	docs, err := tenants.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenants.ValidateDocuments(docs, nil); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	m, ok := docs[0].Object.(*tenants.MeshConfig)
	if !ok {
		t.Fatalf("%s holds no MeshConfig first", file)
	}
	return tenants.DefaultedMeshConfig(m)
}

// TestKubernetesJWKSOverTLS: the control plane serves the public admin
// listener over HTTPS with a Secret whose Certificate carries the SAN the
// sidecars check, from the CA that issues the xDS certificate; the probes
// speak HTTPS; the sidecars' tenantmesh-jwks cluster trusts
// controlPlaneAdminTLS.caFile, which is the ca.crt of the certificate
// Secret every sidecar mounts as README.md says to render it.
func TestKubernetesJWKSOverTLS(t *testing.T) {
	_, objs := loadK8s(t)
	cp := objs.deployments["tenantmesh"]
	c := container(t, cp)
	certFile, keyFile := flagValue(c.Args, "admin-tls-cert"), flagValue(c.Args, "admin-tls-key")
	if certFile == "" || keyFile == "" {
		t.Fatalf("the control plane has --admin-tls-cert %q --admin-tls-key %q: the public admin listener serves plain HTTP", certFile, keyFile)
	}
	if filepath.Dir(keyFile) != filepath.Dir(certFile) {
		t.Errorf("--admin-tls-key %s is not in the Secret of --admin-tls-cert %s", keyFile, certFile)
	}
	admin := secretAt(t, objs, cp, certFile)
	xds := secretAt(t, objs, cp, flagValue(c.Args, "xds-tls-cert"))
	if admin.Spec.IssuerRef != xds.Spec.IssuerRef {
		t.Errorf("the admin certificate (issuer %v) and the xDS certificate (issuer %v) come from different CAs: a sidecar's ca.crt would not verify both", admin.Spec.IssuerRef, xds.Spec.IssuerRef)
	}
	mesh := loadMesh(t, filepath.Join(k8sDir, "meshconfig.yaml"))
	san := adminSAN(t, mesh.Spec)
	if !contains(admin.Spec.Usages, "server auth") || !contains(admin.Spec.DNSNames, san) {
		t.Errorf("admin certificate %s: usages %v, DNS names %v; want server auth and %s, the SAN the sidecars check", admin.Metadata.Name, admin.Spec.Usages, admin.Spec.DNSNames, san)
	}

	// The probes reach an HTTPS listener.
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe %+v: want httpGet with scheme HTTPS on port admin", name, p)
		}
	}
	for _, sp := range objs.services["tenantmesh"].Spec.Ports {
		if sp.Name != "admin" {
			continue
		}
		if sp.AppProtocol == nil || *sp.AppProtocol != "https" {
			t.Errorf("Service tenantmesh port %s: want appProtocol https", sp.String())
		}
	}

	// The sidecars: README.md says which files to render them with; the
	// CA they verify xDS with is the caFile, beside their certificate (the
	// Secret they mount), and it is a CA certificate, not a key.
	caFile := mesh.Spec.ControlPlaneAdminTLS.CAFile
	flags := regexp.MustCompile("`(--xds-tls-ca \\S+ --xds-tls-cert \\S+ --xds-tls-key \\S+)`").FindAllStringSubmatch(readFile(t, filepath.Join(k8sDir, "README.md")), -1)
	if len(flags) != 1 {
		t.Fatalf("deploy/kubernetes/README.md shows %d sidecar render flag sets, want 1", len(flags))
	}
	renderFlags := strings.Fields(flags[0][1])
	if flagValue(renderFlags, "xds-tls-ca") != caFile || filepath.Dir(flagValue(renderFlags, "xds-tls-cert")) != filepath.Dir(caFile) || filepath.Base(caFile) != "ca.crt" {
		t.Errorf("sidecars are rendered with %v, but controlPlaneAdminTLS.caFile is %s: want the ca.crt of the Secret they mount", renderFlags, caFile)
	}
	file := filepath.Join(t.TempDir(), "t.yaml")
	writeTestFile(t, file, isolatedManifest)
	r := runArgs("", append([]string{"k8s", "render", "tenant-k", "-f", file}, renderFlags...)...)
	if r.code != 0 {
		t.Fatalf("k8s render %v: exit %d: %s", renderFlags, r.code, r.stderr)
	}
	docs := strings.Split(r.stdout, "\n---\n")
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(docs[len(docs)-1]), &cm); err != nil || cm.Name != k8s.SidecarConfigMapName("svc") {
		t.Fatalf("the last rendered document is not the sidecar bootstrap (%v)", err)
	}
	b, err := bootstrap.ParseYAML([]byte(cm.Data[k8s.SidecarBootstrapKey]))
	if err != nil {
		t.Fatal(err)
	}
	if ca := envoyTLS(t, "rendered sidecar", b).GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetFilename(); ca != caFile {
		t.Errorf("the rendered sidecar verifies xDS with %s, the JWKS server with %s: want one file", ca, caFile)
	}

	cat := tenants.NewCatalog(tenants.Input{Revision: 1, Mesh: mesh, Tenants: composeTenants(t)}, nil)
	checkJWKSCluster(t, "Kubernetes sidecar", jwksTLSOf(t, cat, executiveSidecar), caFile, san)
}
