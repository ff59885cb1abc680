package k8s

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// namespaceNameLabel is set by Kubernetes on every namespace (1.21+), so
// a policy can select a namespace by name without anybody labelling it.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// networkPolicy admits ingress to every pod of the tenant namespace only
// from pods of the same namespace and from the Envoy edge pods. Traffic
// from other tenants (and anything else in the cluster) must go through
// the edge, where ext_authz checks it. Egress is left open: tenant
// services call external APIs, and DNS must keep working.
func networkPolicy(t *tenants.Tenant, ns string, o Options) *networkingv1.NetworkPolicy {
	edge := make(map[string]string, len(o.EdgePodLabels))
	for k, v := range o.EdgePodLabels {
		edge[k] = v
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(t, "tenantmesh-isolation", ns),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{}, // every pod of the namespace
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					// Same namespace: a bare podSelector is namespace-local.
					{PodSelector: &metav1.LabelSelector{}},
					// The edge: namespace AND pod labels, in one peer.
					{
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: o.EdgeNamespace}},
						PodSelector:       &metav1.LabelSelector{MatchLabels: edge},
					},
				},
			}},
		},
	}
}
