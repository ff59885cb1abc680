package tenants

import "testing"

func TestValidateTenantAuditRetention(t *testing.T) {
	type tc = validationCase[*Tenant]
	set := func(r Duration) func(*Tenant) {
		return func(t *Tenant) { t.Spec.Audit = &TenantAudit{Retention: r} }
	}
	runValidationCases(t, baseTenant, nil, []tc{
		{"retention 90 days", set("2160h"), "", ""},
		{"retention unset: forever", set(""), "", ""},
		{"retention not a duration", set("90d"), "spec.audit.retention", `"90d" is not a duration`},
		{"retention below the minimum", set("1s"), "spec.audit.retention", "shorter than the minimum 1h0m0s"},
		{"retention negative", set("-24h"), "spec.audit.retention", "shorter than the minimum"},
	})
}
