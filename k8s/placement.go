package k8s

import corev1 "k8s.io/api/core/v1"

// Placement pins pods to a tenant's dedicated nodes: required node
// affinity to the nodes' labels, and tolerations of the taints that keep
// other tenants off them. Label and taint the nodes alike:
//
//	kubectl label nodes NODE pool=tenant-a
//	kubectl taint nodes NODE pool=tenant-a:NoSchedule
type Placement struct {
	Affinity    *corev1.Affinity
	Tolerations []corev1.Toleration
}

// placement is the Placement for dedicated node labels, nil for none.
func placement(labels map[string]string) *Placement {
	if len(labels) == 0 {
		return nil
	}
	var exprs []corev1.NodeSelectorRequirement
	var tols []corev1.Toleration
	for _, k := range sortedKeys(labels) {
		exprs = append(exprs, corev1.NodeSelectorRequirement{Key: k, Operator: corev1.NodeSelectorOpIn, Values: []string{labels[k]}})
		tols = append(tols, corev1.Toleration{Key: k, Operator: corev1.TolerationOpEqual, Value: labels[k], Effect: corev1.TaintEffectNoSchedule})
	}
	return &Placement{
		// One term with every label: the requirements of a term are ANDed.
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: exprs}},
			},
		}},
		Tolerations: tols,
	}
}
