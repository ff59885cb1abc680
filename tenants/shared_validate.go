package tenants

import "strings"

// validateSharedServiceSpec checks a SharedService: its connection
// settings with the same rules as a tenant upstream, its features as
// identifiers, its per-tenant thresholds as non-negative.
func validateSharedServiceSpec(e *errs, p Path, s *SharedServiceSpec) {
	if !printable(s.DisplayName) {
		e.add(p.Child("displayName"), "must be printable UTF-8 without control characters")
	}
	// Reuse the upstream rules; their paths (spec.upstreams[0].endpoints…)
	// are rewritten to the service's own (spec.endpoints…).
	var ue errs
	u := (&SharedService{Spec: *s}).asUpstream()
	u.Name = "x" // metadata.name is validateMeta's to report
	validateUpstreams(&ue, "up", []Upstream{u})
	for _, fe := range ue.list {
		fe.Path = p.Child(strings.TrimPrefix(string(fe.Path), "up[0]."))
		e.list = append(e.list, fe)
	}
	checkDuration(e, p.Child("timeout"), s.Timeout)
	validateFeatures(e, p.Child("features"), s.Features)
	if pt := s.PerTenant; pt != nil && pt.CircuitBreaker != nil {
		cp := p.Child("perTenant").Child("circuitBreaker")
		cb := pt.CircuitBreaker
		checkNonNegative(e, cp.Child("maxConnections"), cb.MaxConnections)
		checkNonNegative(e, cp.Child("maxPendingRequests"), cb.MaxPendingRequests)
		checkNonNegative(e, cp.Child("maxRequests"), cb.MaxRequests)
		checkNonNegative(e, cp.Child("maxRetries"), cb.MaxRetries)
	}
}
