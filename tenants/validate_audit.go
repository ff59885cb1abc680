package tenants

import "time"

// MinAuditRetention is the shortest spec.audit.retention accepted: a
// typo such as "1s" for "1h" must not have compaction summarize a
// tenant's changes as soon as they are made.
const MinAuditRetention = time.Hour

func validateTenantAudit(e *errs, p Path, a *TenantAudit) {
	rp := p.Child("retention")
	if !a.Retention.IsSet() {
		return
	}
	d, err := a.Retention.Parse()
	if err != nil {
		e.add(rp, "%q is not a duration: use hours, such as 2160h for 90 days (unset: keep forever)", string(a.Retention))
		return
	}
	if d < MinAuditRetention {
		e.add(rp, "%q is shorter than the minimum %s (unset: keep forever)", string(a.Retention), MinAuditRetention)
	}
}
