// Package k8s renders the Kubernetes objects that isolate one tenant's
// workloads (spec.isolation, docs/fields.md): its Namespace, ResourceQuota,
// LimitRange, a NetworkPolicy that admits traffic only from the Envoy
// edge and the namespace itself, node placement for dedicated nodes, and
// one sidecar Envoy bootstrap ConfigMap per tenant upstream.
//
// Rendering is pure: a validated Tenant and Options in, typed k8s.io/api
// objects out. Applying them (kubectl apply -f -) is left to the operator
// or a GitOps pipeline, which keeps the control plane free of cluster
// credentials.
package k8s

import (
	"bytes"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Labels and annotations tenantmesh puts on what it renders.
const (
	LabelTenant    = "tenantmesh.io/tenant"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "tenantmesh"
	// LabelUpstream names the tenant upstream a sidecar ConfigMap is for.
	LabelUpstream = "tenantmesh.io/upstream"
)

// Defaults of Options; they match deploy/kubernetes.
const (
	DefaultEdgeNamespace = "tenantmesh-system"
	DefaultXDSAddress    = "tenantmesh.tenantmesh-system.svc.cluster.local:18000"
)

// DefaultEdgePodLabels select the Envoy edge pods of deploy/kubernetes.
func DefaultEdgePodLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "tenantmesh-edge"}
}

// Options say where the shared parts run.
type Options struct {
	// EdgeNamespace and EdgePodLabels select the Envoy edge pods, the only
	// pods outside the tenant namespace allowed to connect to it.
	EdgeNamespace string
	EdgePodLabels map[string]string
	// XDSAddress is the xDS server as sidecars reach it.
	XDSAddress string
	// XDSTLS, when set, makes the sidecars speak mutual TLS to it (paths
	// inside the sidecar container: mount each upstream's certificate
	// Secret there). deploy/kubernetes makes its CA file the MeshConfig's
	// controlPlaneAdminTLS.caFile too: one path in every sidecar pod.
	XDSTLS *bootstrap.TLSFiles
	// SidecarAdminPort is the loopback admin port of sidecar Envoys
	// (default 9901).
	SidecarAdminPort int
	// AppPorts are the application ports of the tenant's upstreams, by
	// upstream name. Unset, an upstream's first endpoint port is taken —
	// unless it is SidecarInboundPort: then the endpoint is the sidecar
	// itself and the application's port must be given.
	AppPorts map[string]int
	// SidecarInboundPort is MeshConfig spec.sidecarInboundPort (default
	// tenants.DefaultSidecarInboundPort).
	SidecarInboundPort int
}

func (o Options) withDefaults() Options {
	if o.EdgeNamespace == "" {
		o.EdgeNamespace = DefaultEdgeNamespace
	}
	if len(o.EdgePodLabels) == 0 {
		o.EdgePodLabels = DefaultEdgePodLabels()
	}
	if o.XDSAddress == "" {
		o.XDSAddress = DefaultXDSAddress
	}
	if o.SidecarInboundPort == 0 {
		o.SidecarInboundPort = tenants.DefaultSidecarInboundPort
	}
	return o
}

// Objects are one tenant's isolation objects.
type Objects struct {
	Namespace     *corev1.Namespace
	ResourceQuota *corev1.ResourceQuota // nil without spec.isolation.quota
	LimitRange    *corev1.LimitRange
	NetworkPolicy *networkingv1.NetworkPolicy
	// SidecarBootstraps hold one Envoy bootstrap (key envoy.yaml) per
	// tenant upstream, in the order of spec.upstreams.
	SidecarBootstraps []*corev1.ConfigMap
	// Placement pins the tenant's pods to its dedicated nodes (nil without
	// spec.isolation.dedicatedNodes). The Namespace carries the same as
	// annotations, enforced on clusters that enable the PodNodeSelector
	// and PodTolerationRestriction admission plugins; PlacementYAML is the
	// patch for the others.
	Placement *Placement
}

// Render builds the isolation objects of t, which must be valid.
func Render(t *tenants.Tenant, o Options) (*Objects, error) {
	o = o.withDefaults()
	iso := t.Spec.Isolation
	if iso == nil {
		iso = &tenants.Isolation{}
	}
	ns := Namespace(t)
	out := &Objects{Placement: placement(iso.DedicatedNodes)}
	var err error
	if out.Namespace, err = namespace(t, ns, iso.DedicatedNodes, out.Placement); err != nil {
		return nil, err
	}
	if out.ResourceQuota, err = resourceQuota(t, ns, iso.Quota); err != nil {
		return nil, err
	}
	if out.LimitRange, err = limitRange(t, ns, iso); err != nil {
		return nil, err
	}
	out.NetworkPolicy = networkPolicy(t, ns, o)
	if out.SidecarBootstraps, err = sidecarBootstraps(t, ns, o); err != nil {
		return nil, err
	}
	return out, nil
}

// Namespace is the tenant's namespace: spec.isolation.namespace, else the
// tenant id (a DNS label, so always a valid namespace name).
func Namespace(t *tenants.Tenant) string {
	if iso := t.Spec.Isolation; iso != nil && iso.Namespace != "" {
		return iso.Namespace
	}
	return t.ID()
}

// meta is the ObjectMeta of every rendered object.
func meta(t *tenants.Tenant, name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace,
		Labels: map[string]string{LabelTenant: t.ID(), LabelManagedBy: ManagedBy}}
}

// YAML renders the objects as one multi-document stream for kubectl
// apply, in dependency order (the Namespace first). The placement patch
// is not part of it: it is not an object to create (see PlacementYAML).
func (objs *Objects) YAML() ([]byte, error) {
	list := []any{objs.Namespace}
	if objs.ResourceQuota != nil {
		list = append(list, objs.ResourceQuota)
	}
	list = append(list, objs.LimitRange, objs.NetworkPolicy)
	for _, cm := range objs.SidecarBootstraps {
		list = append(list, cm)
	}
	var buf bytes.Buffer
	for i, o := range list {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", o, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// PlacementYAML renders the placement as a strategic merge patch of a
// Deployment (kubectl patch deployment NAME --patch-file FILE), or nil
// when the tenant has no dedicated nodes. Only the two fields are in it:
// a marshalled Deployment would carry empty containers and selector that
// the patch would apply too.
func (objs *Objects) PlacementYAML() ([]byte, error) {
	if objs.Placement == nil {
		return nil, nil
	}
	patch := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"affinity":    objs.Placement.Affinity,
		"tolerations": objs.Placement.Tolerations,
	}}}}
	b, err := yaml.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("encode placement patch: %w", err)
	}
	return b, nil
}
