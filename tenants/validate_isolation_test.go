package tenants

import (
	"strings"
	"testing"
)

func TestValidateLimitRange(t *testing.T) {
	for _, c := range []struct {
		name   string
		limits IsolationLimits
		path   string
		want   string
	}{
		{"valid", IsolationLimits{DefaultRequest: map[string]string{"cpu": "100m", "memory": "128Mi"}, Default: map[string]string{"cpu": "1"}, Max: map[string]string{"ephemeral-storage": "2Gi"}}, "", ""},
		{"unknown resource", IsolationLimits{Default: map[string]string{"gpu": "1"}}, `spec.isolation.limitRange.default["gpu"]`, `unknown resource "gpu"`},
		{"bad quantity", IsolationLimits{Max: map[string]string{"memory": "lots"}}, `spec.isolation.limitRange.max["memory"]`, "Kubernetes quantity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tn := &Tenant{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindTenant}, Metadata: ObjectMeta{Name: "tenant-a"},
				Spec: TenantSpec{Isolation: &Isolation{LimitRange: &c.limits}}}
			errs := Validate(tn, nil)
			if c.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if !strings.Contains(errs.Error(), c.path) || !strings.Contains(errs.Error(), c.want) {
				t.Fatalf("errors %v, want %s: %s", errs, c.path, c.want)
			}
		})
	}
}
