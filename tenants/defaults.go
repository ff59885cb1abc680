package tenants

import "time"

// Defaults applied when neither the tenant nor its tier says otherwise.
const (
	DefaultTier                = "standard"
	DefaultEdgePort            = 10000
	DefaultSidecarInboundPort  = 15006
	DefaultSidecarOutboundPort = 15001
	DefaultAuthzAddress        = "127.0.0.1:9191"
	DefaultAuthzTimeout        = 250 * time.Millisecond
	DefaultRateLimitAddress    = "127.0.0.1:8081"
	DefaultRateLimitTimeout    = 100 * time.Millisecond
	DefaultAdminAddress        = "127.0.0.1:9102"
	DefaultTenantClaim         = "tenant_id"
	DefaultRolesClaim          = "roles"
	DefaultRouteTimeout        = 15 * time.Second
	DefaultConnectTimeout      = 2 * time.Second
	DefaultMaxBodyBytes        = 8192
	DefaultLocale              = "en"
)

// BuiltinTiers returns the tiers every installation has; Tier objects with
// the same name replace them. The map is fresh, the tiers are shared and
// must not be modified.
func BuiltinTiers() map[string]*Tier {
	out := make(map[string]*Tier, len(builtinTiers))
	for k, v := range builtinTiers {
		out[k] = v
	}
	return out
}

var builtinTiers = func() map[string]*Tier {
	mk := func(name string, local LocalRateLimit, global GlobalRateLimit, maxConc int, prio Priority) *Tier {
		return &Tier{
			TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindTier},
			Metadata: ObjectMeta{Name: name},
			Spec: TierSpec{
				RateLimits:            &RateLimits{Local: &local, Global: []GlobalRateLimit{global}},
				MaxConcurrentRequests: maxConc,
				Priority:              prio,
			},
		}
	}
	return map[string]*Tier{
		"free":       mk("free", LocalRateLimit{Requests: 10, Per: UnitSecond, Burst: 5}, GlobalRateLimit{Requests: 1000, Per: UnitHour}, 20, PriorityDefault),
		"standard":   mk("standard", LocalRateLimit{Requests: 100, Per: UnitSecond, Burst: 20}, GlobalRateLimit{Requests: 6000, Per: UnitMinute}, 200, PriorityDefault),
		"enterprise": mk("enterprise", LocalRateLimit{Requests: 1000, Per: UnitSecond, Burst: 200}, GlobalRateLimit{Requests: 60000, Per: UnitMinute}, 1000, PriorityHigh),
	}
}()

// DefaultedMeshConfig returns a copy of m (nil: the built-in MeshConfig)
// with every unset field defaulted.
func DefaultedMeshConfig(m *MeshConfig) *MeshConfig {
	out := &MeshConfig{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindMeshConfig},
		Metadata: ObjectMeta{Name: MeshConfigName},
	}
	if m != nil {
		c := *m
		c.Spec.JWT = defaultedIssuers(m.Spec.JWT)
		out = &c
	}
	s := &out.Spec
	setInt(&s.EdgePort, DefaultEdgePort)
	setInt(&s.SidecarInboundPort, DefaultSidecarInboundPort)
	setInt(&s.SidecarOutboundPort, DefaultSidecarOutboundPort)
	setStr(&s.Authz.Address, DefaultAuthzAddress)
	setDur(&s.Authz.Timeout, DefaultAuthzTimeout)
	setStr(&s.RateLimit.Address, DefaultRateLimitAddress)
	setDur(&s.RateLimit.Timeout, DefaultRateLimitTimeout)
	setStr(&s.ControlPlaneAdmin, DefaultAdminAddress)
	return out
}

// DefaultedTenant returns a copy of t with the tier's defaults and the
// built-in defaults applied. t is not modified; slices that defaulting
// changes are copied, the rest is shared (the Catalog never mutates).
func DefaultedTenant(t *Tenant, tier *Tier) *Tenant {
	c := *t
	s := &c.Spec
	if s.Tier == "" {
		s.Tier = DefaultTier
	}
	if s.Status == "" {
		s.Status = StatusActive
	}
	if tier != nil {
		if s.RateLimits == nil {
			s.RateLimits = tier.Spec.RateLimits
		} else if tier.Spec.RateLimits != nil {
			// Each half (local, global) defaults separately.
			rl := *s.RateLimits
			if rl.Local == nil {
				rl.Local = tier.Spec.RateLimits.Local
			}
			if rl.Global == nil {
				rl.Global = tier.Spec.RateLimits.Global
			}
			s.RateLimits = &rl
		}
		if s.MaxConcurrentRequests == 0 {
			s.MaxConcurrentRequests = tier.Spec.MaxConcurrentRequests
		}
		s.Priority = tier.Spec.Priority
	}
	if s.Errors == nil || s.Errors.Locale == "" {
		s.Errors = &ErrorsSpec{Locale: DefaultLocale}
	}
	s.Auth.JWT = defaultedIssuers(s.Auth.JWT)
	routes := make([]Route, len(s.Routes))
	for i, r := range s.Routes {
		setDur(&r.Timeout, DefaultRouteTimeout)
		if r.RequestValidation != nil && r.RequestValidation.MaxBodyBytes == 0 {
			rv := *r.RequestValidation
			rv.MaxBodyBytes = DefaultMaxBodyBytes
			r.RequestValidation = &rv
		}
		routes[i] = r
	}
	s.Routes = routes
	ups := make([]Upstream, len(s.Upstreams))
	for i, u := range s.Upstreams {
		if u.LBPolicy == "" {
			u.LBPolicy = LBRoundRobin
		}
		if u.Protocol == "" {
			u.Protocol = ProtocolHTTP1
		}
		setDur(&u.ConnectTimeout, DefaultConnectTimeout)
		eps := make([]Endpoint, len(u.Endpoints))
		for j, e := range u.Endpoints {
			setInt(&e.Weight, 1)
			eps[j] = e
		}
		u.Endpoints = eps
		ups[i] = u
	}
	s.Upstreams = ups
	return &c
}

func defaultedIssuers(in []JWTIssuer) []JWTIssuer {
	if in == nil {
		return nil
	}
	out := make([]JWTIssuer, len(in))
	for i, j := range in {
		setStr(&j.TenantClaim, DefaultTenantClaim)
		setStr(&j.RolesClaim, DefaultRolesClaim)
		if len(j.Algorithms) == 0 {
			j.Algorithms = []string{"RS256", "ES256"}
		}
		out[i] = j
	}
	return out
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if *p == "" {
		*p = Duration(v.String())
	}
}
