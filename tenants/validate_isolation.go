package tenants

import "strings"

// limitResources are the container resources an isolation LimitRange may
// set.
var limitResources = []string{"cpu", "memory", "ephemeral-storage"}

// validateLimitRange checks the shape of spec.isolation.limitRange. That
// defaultRequest <= default <= max is checked where quantities are parsed
// (k8s render); the API server has the last word either way.
func validateLimitRange(e *errs, p Path, l *IsolationLimits) {
	for _, part := range []struct {
		field  string
		values map[string]string
	}{{"defaultRequest", l.DefaultRequest}, {"default", l.Default}, {"max", l.Max}} {
		for _, k := range sortedKeys(part.values) {
			kp := p.Child(part.field).Key(k)
			if !contains(limitResources, k) {
				e.add(kp, "unknown resource %q (want one of %s)", k, strings.Join(limitResources, ", "))
				continue
			}
			if v := part.values[k]; !quantity.MatchString(v) {
				e.add(kp, "%q is not a Kubernetes quantity such as 100m, 256Mi or 1", v)
			}
		}
	}
}
