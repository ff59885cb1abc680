package main

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const isolatedManifest = `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-k}
spec:
  routes: [{name: api, match: {pathPrefix: /api/}, upstream: svc}]
  upstreams: [{name: svc, endpoints: [{address: svc.tenant-k.svc, port: 8080}]}]
  isolation:
    quota: {cpu: "2", pods: "10"}
    dedicatedNodes: {pool: tenant-k}
`

func TestK8sRenderFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.yaml")
	writeTestFile(t, file, isolatedManifest)
	r := runArgs("", "k8s", "render", "tenant-k", "-f", file)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	docs := strings.Split(r.stdout, "\n---\n")
	var ns corev1.Namespace
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &ns); err != nil || ns.Name != "tenant-k" {
		t.Fatalf("first document is not the tenant's Namespace (%v):\n%s", err, docs[0])
	}
	var quota corev1.ResourceQuota
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &quota); err != nil || quota.Spec.Hard.Pods().String() != "10" {
		t.Fatalf("second document is not the quota (%v):\n%s", err, docs[1])
	}
	if len(docs) != 5 {
		t.Errorf("%d documents, want Namespace, ResourceQuota, LimitRange, NetworkPolicy, 1 ConfigMap", len(docs))
	}

	r = runArgs("", "k8s", "render", "tenant-k", "-f", file, "--placement")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(r.stdout), &d); r.code != 0 || err != nil || len(d.Spec.Template.Spec.Tolerations) != 1 {
		t.Fatalf("--placement: exit %d, %v:\n%s%s", r.code, err, r.stdout, r.stderr)
	}
}

func TestK8sRenderFromEtcd(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "apply", "-f", "../../examples/tenants/tenant-a.yaml")
	out := c.ok("k8s", "render", "tenant-a", "--xds-address", "cp.example:18000")
	if !strings.Contains(out, "kind: NetworkPolicy") || !strings.Contains(out, "name: tenantmesh-sidecar-executive") || !strings.Contains(out, "address: cp.example") {
		t.Errorf("render of the stored tenant-a lacks its objects:\n%s", out)
	}
	// tenant-a has no dedicated nodes: nothing to place is an error, not
	// an empty patch that would look like success.
	if r := c.run("", "k8s", "render", "tenant-a", "--placement"); r.code != exitError || !strings.Contains(r.stderr, "dedicatedNodes") {
		t.Errorf("--placement without dedicated nodes: exit %d %s", r.code, r.stderr)
	}
	if r := c.run("", "k8s", "render", "nobody"); r.code != exitError || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unknown tenant: exit %d %s", r.code, r.stderr)
	}
	if r := c.run("", "k8s", "render"); r.code != exitUsage {
		t.Errorf("no tenant argument: exit %d", r.code)
	}
}
