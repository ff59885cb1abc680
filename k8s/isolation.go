package k8s

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// Namespace annotations of the PodNodeSelector and PodTolerationRestriction
// admission plugins: every pod of the namespace gets the node selector and
// the tolerations, whatever its own spec says.
const (
	AnnotationNodeSelector       = "scheduler.alpha.kubernetes.io/node-selector"
	AnnotationDefaultTolerations = "scheduler.alpha.kubernetes.io/defaultTolerations"
)

// namespace labels the tenant's namespace for the Pod Security admission:
// baseline is enforced (no host namespaces, privileged containers or
// host paths — what would let one tenant's pod reach another's), the
// stricter restricted profile only warns.
func namespace(t *tenants.Tenant, name string, dedicated map[string]string, p *Placement) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: meta(t, name, ""),
	}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "baseline"
	ns.Labels["pod-security.kubernetes.io/warn"] = "restricted"
	if p == nil {
		return ns, nil
	}
	sel := make([]string, 0, len(dedicated))
	for _, k := range sortedKeys(dedicated) {
		sel = append(sel, k+"="+dedicated[k])
	}
	tol, err := json.Marshal(p.Tolerations)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: encode tolerations: %w", t.ID(), err)
	}
	ns.Annotations = map[string]string{
		AnnotationNodeSelector:       strings.Join(sel, ","),
		AnnotationDefaultTolerations: string(tol),
	}
	return ns, nil
}

// quotaKeys maps spec.isolation.quota onto ResourceQuota resources. CPU
// caps the sum of requests only: CPU is compressible, a tenant bursting
// past its request is throttled, not harmful to others. Memory caps
// requests and limits: memory over-commit ends in OOM kills, possibly of
// another tenant's pods on a shared node.
var quotaKeys = map[string][]corev1.ResourceName{
	"cpu":     {corev1.ResourceRequestsCPU},
	"memory":  {corev1.ResourceRequestsMemory, corev1.ResourceLimitsMemory},
	"pods":    {corev1.ResourcePods},
	"storage": {corev1.ResourceRequestsStorage},
}

func resourceQuota(t *tenants.Tenant, ns string, quota map[string]string) (*corev1.ResourceQuota, error) {
	if len(quota) == 0 {
		return nil, nil
	}
	hard := corev1.ResourceList{}
	for _, k := range sortedKeys(quota) {
		keys, ok := quotaKeys[k]
		if !ok {
			return nil, fmt.Errorf("tenant %s: spec.isolation.quota[%q]: unknown resource", t.ID(), k)
		}
		q, err := resource.ParseQuantity(quota[k])
		if err != nil {
			return nil, fmt.Errorf("tenant %s: spec.isolation.quota[%q]: %w", t.ID(), k, err)
		}
		for _, rk := range keys {
			hard[rk] = q
		}
	}
	return &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: meta(t, "tenantmesh-quota", ns),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}, nil
}

// Built-in container defaults, used when spec.isolation.limitRange is not
// set: a namespace with a cpu or memory quota rejects pods that declare
// no requests (or, for memory, no limits), so every tenant namespace gets
// defaults. They are lowered to the quota when the quota is smaller.
var (
	defaultRequest = map[string]string{"cpu": "100m", "memory": "128Mi"}
	defaultLimit   = map[string]string{"memory": "512Mi"}
)

func limitRange(t *tenants.Tenant, ns string, iso *tenants.Isolation) (*corev1.LimitRange, error) {
	spec := iso.LimitRange
	if spec == nil {
		spec = &tenants.IsolationLimits{DefaultRequest: capped(defaultRequest, iso.Quota), Default: capped(defaultLimit, iso.Quota)}
	}
	item := corev1.LimitRangeItem{Type: corev1.LimitTypeContainer}
	var err error
	path := "spec.isolation.limitRange."
	if item.DefaultRequest, err = resourceList(spec.DefaultRequest); err != nil {
		return nil, fmt.Errorf("tenant %s: %sdefaultRequest: %w", t.ID(), path, err)
	}
	if item.Default, err = resourceList(spec.Default); err != nil {
		return nil, fmt.Errorf("tenant %s: %sdefault: %w", t.ID(), path, err)
	}
	if item.Max, err = resourceList(spec.Max); err != nil {
		return nil, fmt.Errorf("tenant %s: %smax: %w", t.ID(), path, err)
	}
	// The API server rejects a LimitRange whose default request exceeds
	// its default limit or max; say so here, with the field's name.
	for _, pair := range []struct {
		lowName, highName string
		low, high         corev1.ResourceList
	}{
		{"defaultRequest", "default", item.DefaultRequest, item.Default},
		{"defaultRequest", "max", item.DefaultRequest, item.Max},
		{"default", "max", item.Default, item.Max},
	} {
		for name, lo := range pair.low {
			if hi, ok := pair.high[name]; ok && lo.Cmp(hi) > 0 {
				return nil, fmt.Errorf("tenant %s: %s%s[%q] %s is more than %s[%q] %s", t.ID(), path, pair.lowName, name, lo.String(), pair.highName, name, hi.String())
			}
		}
	}
	return &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: meta(t, "tenantmesh-limits", ns),
		Spec:       corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{item}},
	}, nil
}

// capped returns defaults, each lowered to the quota of its resource.
func capped(defaults, quota map[string]string) map[string]string {
	out := make(map[string]string, len(defaults))
	for k, v := range defaults {
		out[k] = v
		qs, ok := quota[k]
		if !ok {
			continue
		}
		q, qerr := resource.ParseQuantity(qs)
		d, derr := resource.ParseQuantity(v)
		if qerr == nil && derr == nil && q.Cmp(d) < 0 {
			out[k] = qs
		}
	}
	return out
}

func resourceList(m map[string]string) (corev1.ResourceList, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for _, k := range sortedKeys(m) {
		q, err := resource.ParseQuantity(m[k])
		if err != nil {
			return nil, fmt.Errorf("[%q]: %w", k, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
