package k8s

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

const isolatedTenant = `apiVersion: tenantmesh.io/v1alpha1
kind: Tenant
metadata: {name: tenant-a}
spec:
  routes:
    - {name: api, match: {pathPrefix: /api/}, upstream: executive}
  upstreams:
    - {name: executive, endpoints: [{address: executive.tenant-a-ns.svc, port: 8080}]}
    - {name: analytics, endpoints: [{address: analytics.tenant-a-ns.svc, port: 9000}]}
  isolation:
    namespace: tenant-a-ns
    quota: {cpu: "4", memory: 8Gi, pods: "20", storage: 100Gi}
    dedicatedNodes: {pool: tenant-a}
`

func decodeTenant(t *testing.T, manifest string) *tenants.Tenant {
	t.Helper()
	docs, err := tenants.Decode("t.yaml", []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	tn := docs[0].Object.(*tenants.Tenant)
	if errs := tenants.Validate(tn, nil); len(errs) > 0 {
		t.Fatalf("test tenant invalid: %v", errs)
	}
	return tn
}

// rendered holds the objects decoded back from the YAML stream.
type rendered struct {
	ns     *corev1.Namespace
	quota  *corev1.ResourceQuota
	limits *corev1.LimitRange
	policy *networkingv1.NetworkPolicy
	cms    []*corev1.ConfigMap
}

// decodeStream decodes every document strictly into its k8s type, as
// the API server would refuse unknown fields.
func decodeStream(t *testing.T, stream []byte) rendered {
	t.Helper()
	var r rendered
	for i, doc := range bytes.Split(stream, []byte("\n---\n")) {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var target any
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			r.ns = &corev1.Namespace{}
			target = r.ns
		case "v1/ResourceQuota":
			r.quota = &corev1.ResourceQuota{}
			target = r.quota
		case "v1/LimitRange":
			r.limits = &corev1.LimitRange{}
			target = r.limits
		case "networking.k8s.io/v1/NetworkPolicy":
			r.policy = &networkingv1.NetworkPolicy{}
			target = r.policy
		case "v1/ConfigMap":
			cm := &corev1.ConfigMap{}
			r.cms = append(r.cms, cm)
			target = cm
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Fatalf("document %d (%s) does not decode strictly: %v\n%s", i, tm.Kind, err, doc)
		}
	}
	return r
}

func render(t *testing.T, tn *tenants.Tenant) (*Objects, rendered) {
	t.Helper()
	objs, err := Render(tn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := objs.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return objs, decodeStream(t, y)
}

func TestRenderIsolationObjects(t *testing.T) {
	objs, r := render(t, decodeTenant(t, isolatedTenant))

	if r.ns == nil || r.ns.Name != "tenant-a-ns" || r.ns.Labels[LabelTenant] != "tenant-a" || r.ns.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
		t.Fatalf("namespace %+v", r.ns)
	}
	if got := r.ns.Annotations[AnnotationNodeSelector]; got != "pool=tenant-a" {
		t.Errorf("namespace node selector %q, want pool=tenant-a", got)
	}
	var tols []corev1.Toleration
	if err := json.Unmarshal([]byte(r.ns.Annotations[AnnotationDefaultTolerations]), &tols); err != nil || len(tols) != 1 ||
		tols[0].Key != "pool" || tols[0].Value != "tenant-a" || tols[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("namespace default tolerations %q (%v): want pool=tenant-a:NoSchedule", r.ns.Annotations[AnnotationDefaultTolerations], err)
	}
	for _, o := range []string{r.quota.Namespace, r.limits.Namespace, r.policy.Namespace, r.cms[0].Namespace} {
		if o != "tenant-a-ns" {
			t.Errorf("object in namespace %q, want tenant-a-ns", o)
		}
	}

	hard := r.quota.Spec.Hard
	for name, want := range map[corev1.ResourceName]string{
		corev1.ResourceRequestsCPU: "4", corev1.ResourceRequestsMemory: "8Gi", corev1.ResourceLimitsMemory: "8Gi",
		corev1.ResourcePods: "20", corev1.ResourceRequestsStorage: "100Gi",
	} {
		if q, ok := hard[name]; !ok || q.String() != want {
			t.Errorf("quota %s = %v, want %s", name, q.String(), want)
		}
	}

	item := r.limits.Spec.Limits[0]
	if item.Type != corev1.LimitTypeContainer || item.DefaultRequest.Cpu().String() != "100m" || item.Default.Memory().String() != "512Mi" {
		t.Errorf("limit range %+v: want built-in container defaults (request cpu 100m, limit memory 512Mi)", item)
	}

	// NetworkPolicy: every pod, ingress only from the namespace and the edge.
	p := r.policy.Spec
	if len(p.PodSelector.MatchLabels) != 0 || len(p.PolicyTypes) != 1 || p.PolicyTypes[0] != networkingv1.PolicyTypeIngress || len(p.Ingress) != 1 {
		t.Fatalf("network policy spec %+v", p)
	}
	from := p.Ingress[0].From
	if len(from) != 2 || from[0].PodSelector == nil || from[0].NamespaceSelector != nil || len(from[0].PodSelector.MatchLabels) != 0 {
		t.Fatalf("first peer %+v: want the namespace's own pods", from)
	}
	edge := from[1]
	if edge.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != DefaultEdgeNamespace ||
		edge.PodSelector.MatchLabels["app.kubernetes.io/name"] != "tenantmesh-edge" {
		t.Errorf("edge peer %+v: want namespace %s AND the edge pods", edge, DefaultEdgeNamespace)
	}

	// One sidecar bootstrap per upstream, valid, carrying its workload.
	if len(r.cms) != 2 {
		t.Fatalf("%d sidecar ConfigMaps, want 2 (one per upstream)", len(r.cms))
	}
	for i, up := range []struct {
		name string
		port int
	}{{"executive", 8080}, {"analytics", 9000}} {
		cm := r.cms[i]
		if cm.Name != SidecarConfigMapName(up.name) || cm.Labels[LabelUpstream] != up.name {
			t.Errorf("ConfigMap %s labels %v, want %s", cm.Name, cm.Labels, SidecarConfigMapName(up.name))
		}
		b, err := bootstrap.ParseYAML([]byte(cm.Data[SidecarBootstrapKey]))
		if err != nil {
			t.Fatalf("%s: bootstrap invalid: %v", cm.Name, err)
		}
		n := translate.NodeFromProto(b.GetNode())
		if n.Role != translate.RoleSidecar || n.Tenant != "tenant-a" || n.Service != up.name || n.AppPort != up.port {
			t.Errorf("%s: node %+v", cm.Name, n)
		}
		if a := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress(); a.GetAddress() != "tenantmesh.tenantmesh-system.svc.cluster.local" {
			t.Errorf("%s: xDS address %s, want the in-cluster control plane service", cm.Name, a.GetAddress())
		}
	}

	// The placement patch is a strict Deployment patch with only the
	// placement in it.
	patch, err := objs.PlacementYAML()
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(patch, &d); err != nil {
		t.Fatalf("placement patch does not decode as a Deployment: %v\n%s", err, patch)
	}
	pod := d.Spec.Template.Spec
	term := pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0]
	if term.Key != "pool" || term.Values[0] != "tenant-a" || pod.Tolerations[0].Key != "pool" || pod.Tolerations[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("placement %+v", pod)
	}
	if strings.Contains(string(patch), "containers") || strings.Contains(string(patch), "selector:") {
		t.Errorf("the patch would overwrite containers or selector:\n%s", patch)
	}
}

func TestRenderWithoutIsolation(t *testing.T) {
	tn := decodeTenant(t, strings.SplitN(isolatedTenant, "  isolation:", 2)[0])
	objs, r := render(t, tn)
	if r.ns.Name != "tenant-a" || r.quota != nil || len(r.ns.Annotations) != 0 {
		t.Errorf("namespace %q, quota %v, annotations %v: want the tenant id, no quota, no placement", r.ns.Name, r.quota, r.ns.Annotations)
	}
	if r.policy == nil || r.limits == nil {
		t.Error("isolation basics (network policy, limit range) missing")
	}
	if p, err := objs.PlacementYAML(); p != nil || err != nil {
		t.Errorf("placement patch %q (%v) without dedicated nodes", p, err)
	}
}

func TestRenderLimitRange(t *testing.T) {
	small := strings.Replace(isolatedTenant, "memory: 8Gi", "memory: 256Mi", 1)
	_, r := render(t, decodeTenant(t, small))
	if got := r.limits.Spec.Limits[0].Default.Memory().String(); got != "256Mi" {
		t.Errorf("default memory limit %s with a 256Mi quota: want it capped to 256Mi, or no pod fits", got)
	}

	custom := isolatedTenant + "    limitRange: {defaultRequest: {cpu: 250m}, default: {cpu: \"1\"}, max: {cpu: \"2\", memory: 4Gi}}\n"
	_, r = render(t, decodeTenant(t, custom))
	item := r.limits.Spec.Limits[0]
	if item.DefaultRequest.Cpu().String() != "250m" || item.Max.Memory().String() != "4Gi" {
		t.Errorf("limit range %+v: want the manifest's values", item)
	}

	inverted := isolatedTenant + "    limitRange: {defaultRequest: {cpu: \"2\"}, default: {cpu: \"1\"}}\n"
	if _, err := Render(decodeTenant(t, inverted), Options{}); err == nil || !strings.Contains(err.Error(), "defaultRequest") {
		t.Errorf("defaultRequest above default: err %v, want a named error", err)
	}
}

func TestRenderOptions(t *testing.T) {
	objs, err := Render(decodeTenant(t, isolatedTenant), Options{EdgeNamespace: "gateway", EdgePodLabels: map[string]string{"app": "edge"}, XDSAddress: "cp:18000"})
	if err != nil {
		t.Fatal(err)
	}
	peer := objs.NetworkPolicy.Spec.Ingress[0].From[1]
	if peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "gateway" || peer.PodSelector.MatchLabels["app"] != "edge" {
		t.Errorf("edge peer %+v ignores the options", peer)
	}
	if !strings.Contains(objs.SidecarBootstraps[0].Data[SidecarBootstrapKey], "address: cp") {
		t.Error("sidecar bootstrap ignores --xds-address")
	}
	if strings.Contains(objs.SidecarBootstraps[0].Data[SidecarBootstrapKey], "transport_socket") {
		t.Error("sidecar bootstrap speaks TLS without XDSTLS")
	}

	objs, err = Render(decodeTenant(t, isolatedTenant), Options{XDSTLS: &bootstrap.TLSFiles{CA: "/tls/ca.crt", Cert: "/tls/tls.crt", Key: "/tls/tls.key"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap.ParseYAML([]byte(objs.SidecarBootstraps[0].Data[SidecarBootstrapKey]))
	if err != nil {
		t.Fatal(err)
	}
	var tc tlsv3.UpstreamTlsContext
	if err := b.GetStaticResources().GetClusters()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&tc); err != nil {
		t.Fatalf("sidecar bootstrap with XDSTLS: %v", err)
	}
	if c := tc.GetCommonTlsContext().GetTlsCertificates(); len(c) != 1 || c[0].GetPrivateKey().GetFilename() != "/tls/tls.key" {
		t.Errorf("sidecar client certificate %v, want /tls/tls.crt with /tls/tls.key", c)
	}
}

func TestRenderSidecarAppPorts(t *testing.T) {
	viaSidecar := strings.Replace(isolatedTenant, "port: 8080", "port: 15006", 1)
	tn := decodeTenant(t, viaSidecar)
	if _, err := Render(tn, Options{}); err == nil || !strings.Contains(err.Error(), "--app-port executive=PORT") {
		t.Errorf("endpoint on the sidecar inbound port without an app port: err %v, want one naming --app-port", err)
	}
	objs, err := Render(tn, Options{AppPorts: map[string]int{"executive": 8081}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap.ParseYAML([]byte(objs.SidecarBootstraps[0].Data[SidecarBootstrapKey]))
	if err != nil {
		t.Fatal(err)
	}
	if n := translate.NodeFromProto(b.GetNode()); n.AppPort != 8081 {
		t.Errorf("app port %d, want the given 8081", n.AppPort)
	}
	if _, err := Render(tn, Options{AppPorts: map[string]int{"executive": 8081, "nope": 1}}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("app port for an unknown upstream: err %v", err)
	}
}
