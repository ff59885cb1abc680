package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/k8s"
	"github.com/tenantmesh/tenantmesh/tenants"
)

var k8sDir = filepath.Join(deployDir, "kubernetes")

// kustomization is the part of kustomization.yaml these manifests use.
type kustomization struct {
	APIVersion         string   `json:"apiVersion"`
	Kind               string   `json:"kind"`
	Namespace          string   `json:"namespace"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
}

// k8sObjects decodes every document of the kustomization's resources
// strictly into its k8s.io/api type.
type k8sObjects struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	slices      []*discoveryv1.EndpointSlice
	namespaces  []*corev1.Namespace
	certs       map[string]*cmCertificate // cert-manager Certificates by name
	issuers     map[string]*cmIssuer
}

func loadK8s(t *testing.T) (*kustomization, *k8sObjects) {
	t.Helper()
	var kz kustomization
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join(k8sDir, "kustomization.yaml"))), &kz); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	objs := &k8sObjects{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, certs: map[string]*cmCertificate{}, issuers: map[string]*cmIssuer{}}
	for _, res := range kz.Resources {
		data := readFile(t, filepath.Join(k8sDir, res))
		for i, doc := range strings.Split(data, "\n---\n") {
			var tm struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", res, i+1, err)
			}
			target, ok := map[string]any{
				"Deployment": &appsv1.Deployment{}, "Service": &corev1.Service{}, "PodDisruptionBudget": &policyv1.PodDisruptionBudget{},
				"EndpointSlice": &discoveryv1.EndpointSlice{}, "Namespace": &corev1.Namespace{}, "ServiceAccount": &corev1.ServiceAccount{},
				"Certificate": &cmCertificate{}, "Issuer": &cmIssuer{},
			}[tm.Kind]
			if !ok {
				t.Fatalf("%s document %d: unexpected kind %q", res, i+1, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
				t.Fatalf("%s document %d (%s) does not decode strictly: %v", res, i+1, tm.Kind, err)
			}
			switch o := target.(type) {
			case *appsv1.Deployment:
				objs.deployments[o.Name] = o
			case *corev1.Service:
				objs.services[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				objs.pdbs[o.Name] = o
			case *discoveryv1.EndpointSlice:
				objs.slices = append(objs.slices, o)
			case *corev1.Namespace:
				objs.namespaces = append(objs.namespaces, o)
			case *cmCertificate:
				objs.certs[o.Metadata.Name] = o
			case *cmIssuer:
				objs.issuers[o.Metadata.Name] = o
			}
		}
	}
	return &kz, objs
}

func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if d == nil || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment %v: want one container", d)
	}
	return d.Spec.Template.Spec.Containers[0]
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestKubernetesControlPlane(t *testing.T) {
	kz, objs := loadK8s(t)
	d := objs.deployments["tenantmesh"]
	if d == nil || d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Fatal("control plane deployment: want at least 2 replicas")
	}
	c := container(t, d)
	cmd := checkCommandLine(t, "control plane container", c.Args)
	if cmd == nil || cmd.Name() != "serve" {
		t.Fatalf("control plane runs %v, want serve", c.Args)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %s, liveness %s; want /readyz, /healthz", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
	adminPort := port(t, flagValue(c.Args, "admin-listen"))
	for _, p := range c.Ports {
		if p.Name == "admin" && itoa(int(p.ContainerPort)) != adminPort {
			t.Errorf("admin containerPort %d, serve listens on %s", p.ContainerPort, adminPort)
		}
	}

	// The context and audit keys: each a Secret mounted where its flag
	// points (both are given: the audit key's default, beside the context
	// key, would be in the context key's read-only Secret).
	for _, flag := range []string{"context-key-file", "audit-key-file"} {
		keyFile := flagValue(c.Args, flag)
		mounted := false
		for _, m := range c.VolumeMounts {
			if keyFile != "" && strings.HasPrefix(keyFile, m.MountPath+"/") {
				for _, v := range d.Spec.Template.Spec.Volumes {
					mounted = mounted || (v.Name == m.Name && v.Secret != nil && v.Secret.SecretName != "")
				}
			}
		}
		if !mounted {
			t.Errorf("--%s %q is not in a mounted Secret: replicas would sign with different keys", flag, keyFile)
		}
	}

	// --etcd-endpoints names the external etcd Service of etcd.yaml.
	etcd := flagValue(c.Args, "etcd-endpoints")
	host, p, err := net.SplitHostPort(etcd)
	if err != nil || objs.services["etcd"] == nil || host != "etcd."+kz.Namespace+".svc.cluster.local" || p != "2379" {
		t.Errorf("--etcd-endpoints %q: want the etcd Service of %s", etcd, kz.Namespace)
	}
	if len(objs.slices) != 1 || objs.slices[0].Labels["kubernetes.io/service-name"] != "etcd" {
		t.Errorf("no EndpointSlice for the selector-less etcd Service")
	}

	pdb := objs.pdbs["tenantmesh"]
	if pdb == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || pdb.Spec.MinAvailable == nil {
		t.Errorf("no PodDisruptionBudget selecting the control plane pods")
	}
	for _, name := range []string{"tenantmesh", "tenantmesh-authz"} {
		if s := objs.services[name]; s == nil || !selects(s.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("Service %s does not select the control plane pods", name)
		}
	}
	if objs.services["tenantmesh-authz"].Spec.ClusterIP != corev1.ClusterIPNone {
		t.Error("tenantmesh-authz must be headless so Envoy balances checks across replicas")
	}
}

func TestKubernetesEdge(t *testing.T) {
	kz, objs := loadK8s(t)
	d := objs.deployments["tenantmesh-edge"]
	c := container(t, d)
	if !selects(k8s.DefaultEdgePodLabels(), d.Spec.Template.Labels) || kz.Namespace != k8s.DefaultEdgeNamespace {
		t.Errorf("edge pods %v in %s are not what tenant NetworkPolicies admit (%v in %s)",
			d.Spec.Template.Labels, kz.Namespace, k8s.DefaultEdgePodLabels(), k8s.DefaultEdgeNamespace)
	}
	if !contains(c.Args, "--service-node") {
		t.Error("edge replicas would share one node id: pass --service-node $(POD_NAME)")
	}
	if pdb := objs.pdbs["tenantmesh-edge"]; pdb == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Error("no PodDisruptionBudget for the edge")
	}

	// The bootstrap ConfigMap comes from the generated file, which points
	// at the control plane Service's xDS port.
	var file string
	for _, g := range kz.ConfigMapGenerator {
		if g.Name == d.Spec.Template.Spec.Volumes[0].ConfigMap.Name {
			for _, f := range g.Files {
				if key, path, ok := strings.Cut(f, "="); ok && key == "envoy.yaml" {
					file = path
				}
			}
		}
	}
	if file == "" {
		t.Fatal("the edge's bootstrap ConfigMap is not generated from a file with key envoy.yaml")
	}
	if _, ok := genLines(t)["kubernetes/"+file]; !ok {
		t.Errorf("deploy/kubernetes/%s is not generated by deploy/gen.sh", file)
	}
	b, err := bootstrap.ParseYAML([]byte(readFile(t, filepath.Join(k8sDir, file))))
	if err != nil {
		t.Fatal(err)
	}
	a := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	svc := objs.services["tenantmesh"]
	if a.GetAddress() != svc.Name+"."+kz.Namespace+".svc.cluster.local" || !servicePort(svc, a.GetPortValue()) {
		t.Errorf("edge bootstrap xDS server %s:%d is not the tenantmesh Service", a.GetAddress(), a.GetPortValue())
	}
}

func servicePort(s *corev1.Service, p uint32) bool {
	for _, sp := range s.Spec.Ports {
		if uint32(sp.Port) == p {
			return true
		}
	}
	return false
}

func TestKubernetesMeshConfig(t *testing.T) {
	kz, objs := loadK8s(t)
	docs, err := tenants.Load(filepath.Join(k8sDir, "meshconfig.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenants.ValidateDocuments(docs, nil); err != nil {
		t.Fatal(err)
	}
	m := docs[0].Object.(*tenants.MeshConfig)
	for field, addr := range map[string]string{"authz.address": m.Spec.Authz.Address, "controlPlaneAdmin": m.Spec.ControlPlaneAdmin} {
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(host, ".")
		s := objs.services[name]
		if s == nil || host != name+"."+kz.Namespace+".svc.cluster.local" || !servicePort(s, uint32(mustAtoi(t, p))) {
			t.Errorf("MeshConfig %s %s is not a Service port of these manifests", field, addr)
		}
	}
	// Not a Kubernetes object: kustomize must not try to apply it.
	if contains(kz.Resources, "meshconfig.yaml") {
		t.Error("kustomization.yaml lists meshconfig.yaml, a tenantmesh manifest")
	}
	// Every YAML file here is used (no stale manifests).
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{"kustomization.yaml": true, "meshconfig.yaml": true, "edge-bootstrap.yaml": true}
	for _, r := range kz.Resources {
		used[r] = true
	}
	for _, f := range files {
		if !used[filepath.Base(f)] {
			t.Errorf("deploy/kubernetes/%s is not used by kustomization.yaml", filepath.Base(f))
		}
	}
	if _, err := os.Stat(filepath.Join(k8sDir, "README.md")); err != nil {
		t.Error("deploy/kubernetes/README.md is missing")
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
