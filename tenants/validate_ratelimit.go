package tenants

// Units are the rate limit units, shortest first.
var Units = []Unit{UnitSecond, UnitMinute, UnitHour, UnitDay}

// validateRateLimits checks tenant, route and tier limits alike. nil (no
// limits given) is valid: the tier's limits apply.
func validateRateLimits(e *errs, p Path, rl *RateLimits) {
	if rl == nil {
		return
	}
	if l := rl.Local; l != nil {
		lp := p.Child("local")
		if l.Requests <= 0 {
			e.add(lp.Child("requests"), "%d must be greater than 0", l.Requests)
		}
		checkUnit(e, lp.Child("per"), l.Per)
		if l.Burst < 0 {
			e.add(lp.Child("burst"), "%d must not be negative", l.Burst)
		}
	}
	perUnit := make(map[Unit]bool, len(rl.Global))
	for i, g := range rl.Global {
		gp := p.Child("global").Index(i)
		if g.Requests <= 0 {
			e.add(gp.Child("requests"), "%d must be greater than 0", g.Requests)
		}
		checkUnit(e, gp.Child("per"), g.Per)
		// envoyproxy/ratelimit keeps one limit per descriptor; a second
		// entry per unit would silently replace the first.
		if g.Per != "" && perUnit[g.Per] {
			e.add(gp.Child("per"), "a global limit per %s is already set; at most one entry per unit", g.Per)
		}
		perUnit[g.Per] = true
	}
}

func checkUnit(e *errs, p Path, u Unit) {
	if u == "" {
		e.add(p, "required: one of %s", joinQuoted(Units))
		return
	}
	checkEnum(e, p, u, Units...)
}

func validateTierSpec(e *errs, p Path, s *TierSpec) {
	validateRateLimits(e, p.Child("rateLimits"), s.RateLimits)
	if s.MaxConcurrentRequests < 0 {
		e.add(p.Child("maxConcurrentRequests"), "%d must not be negative", s.MaxConcurrentRequests)
	}
	checkEnum(e, p.Child("priority"), s.Priority, PriorityDefault, PriorityHigh)
}
