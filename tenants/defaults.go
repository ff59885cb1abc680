package tenants

import (
	"cmp"
	"time"
)

// Defaults applied when neither the object nor a tenant's tier says
// otherwise. Admission applies them, here, once per object:
// DefaultedTenant, DefaultedMeshConfig and DefaultedSharedService, which
// the Catalog runs when it admits the object (resolved.go).
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

	// Health checks and outlier detection (upstreams, shared services).
	DefaultHealthCheckInterval       = 10 * time.Second
	DefaultHealthCheckTimeout        = time.Second
	DefaultUnhealthyThreshold        = 3
	DefaultHealthyThreshold          = 2
	DefaultOutlierInterval           = 10 * time.Second
	DefaultOutlierBaseEjectionTime   = 30 * time.Second
	DefaultOutlierMaxEjectionPercent = 10
)

// defaultRetryOn are the conditions of a retry policy that names none. It
// leaves out 5xx on purpose: retrying a non-idempotent request that
// reached the upstream is a decision the tenant must make explicitly.
// Shared by every defaulted tenant, never modified.
var defaultRetryOn = []string{"connect-failure", "refused-stream", "reset"}

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
// with every unset field defaulted and its resolved view attached
// (MeshConfig.Resolved).
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
	setStr(&s.RateLimit.Address, DefaultRateLimitAddress)
	setStr(&s.ControlPlaneAdmin, DefaultAdminAddress)
	out.resolved = &ResolvedMesh{
		of:                       out,
		AuthzTimeout:             setDur(&s.Authz.Timeout, DefaultAuthzTimeout),
		RateLimitTimeout:         setDur(&s.RateLimit.Timeout, DefaultRateLimitTimeout),
		SidecarRouteTimeout:      DefaultRouteTimeout,
		SidecarAppConnectTimeout: DefaultConnectTimeout,
	}
	return out
}

// DefaultedTenant returns a copy of t with the tier's defaults and the
// built-in defaults applied, and its resolved view attached
// (Tenant.Resolved). t is not modified; what defaulting changes is copied,
// the rest is shared (the Catalog never mutates).
func DefaultedTenant(t *Tenant, tier *Tier) *Tenant {
	c := *t
	s := &c.Spec
	res := &ResolvedTenant{of: &c, Priority: PriorityDefault}
	c.resolved = res
	s.Tier = tierName(t)
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
		res.Priority = cmp.Or(tier.Spec.Priority, PriorityDefault)
	}
	if s.Errors == nil || s.Errors.Locale == "" {
		s.Errors = &ErrorsSpec{Locale: DefaultLocale}
	}
	s.Auth.JWT = defaultedIssuers(s.Auth.JWT)
	routes := make([]Route, len(s.Routes))
	res.Routes = make([]ResolvedRoute, len(s.Routes))
	for i, r := range s.Routes {
		rr := &res.Routes[i]
		rr.Timeout = setDur(&r.Timeout, DefaultRouteTimeout)
		if r.RequestValidation != nil && r.RequestValidation.MaxBodyBytes == 0 {
			rv := *r.RequestValidation
			rv.MaxBodyBytes = DefaultMaxBodyBytes
			r.RequestValidation = &rv
		}
		if r.Retries != nil {
			rt := *r.Retries
			if len(rt.On) == 0 {
				rt.On = defaultRetryOn
			}
			rr.PerTryTimeout = optDur(rt.PerTryTimeout)
			r.Retries = &rt
		}
		routes[i] = r
		rr.Route = &routes[i]
	}
	s.Routes = routes
	ups := make([]Upstream, len(s.Upstreams))
	res.Upstreams = make([]ResolvedUpstream, len(s.Upstreams))
	for i, u := range s.Upstreams {
		ups[i], res.Upstreams[i] = defaultedUpstream(u)
		res.Upstreams[i].Upstream = &ups[i]
	}
	s.Upstreams = ups
	return &c
}

// tierName is the name of the tier t belongs to.
func tierName(t *Tenant) string { return cmp.Or(t.Spec.Tier, DefaultTier) }

// defaultedUpstream fills the unset fields of an upstream (a tenant's, or
// a shared service's connection settings) and
// resolves its durations; the caller points the result's Upstream at
// where it keeps the defaulted upstream.
func defaultedUpstream(u Upstream) (Upstream, ResolvedUpstream) {
	var r ResolvedUpstream
	if u.LBPolicy == "" {
		u.LBPolicy = LBRoundRobin
	}
	if u.Protocol == "" {
		u.Protocol = ProtocolHTTP1
	}
	r.ConnectTimeout = setDur(&u.ConnectTimeout, DefaultConnectTimeout)
	eps := make([]Endpoint, len(u.Endpoints))
	for j, e := range u.Endpoints {
		setInt(&e.Weight, 1)
		eps[j] = e
	}
	u.Endpoints = eps
	if u.HealthCheck != nil {
		hc := *u.HealthCheck
		r.HealthCheckInterval = setDur(&hc.Interval, DefaultHealthCheckInterval)
		r.HealthCheckTimeout = setDur(&hc.Timeout, DefaultHealthCheckTimeout)
		setInt(&hc.UnhealthyThreshold, DefaultUnhealthyThreshold)
		setInt(&hc.HealthyThreshold, DefaultHealthyThreshold)
		u.HealthCheck = &hc
	}
	if u.OutlierDetection != nil {
		od := *u.OutlierDetection
		r.OutlierInterval = setDur(&od.Interval, DefaultOutlierInterval)
		r.OutlierBaseEjectionTime = setDur(&od.BaseEjectionTime, DefaultOutlierBaseEjectionTime)
		setInt(&od.MaxEjectionPercent, DefaultOutlierMaxEjectionPercent)
		u.OutlierDetection = &od
	}
	return u, r
}

// DefaultedSharedService returns a copy of s with its connection settings
// and timeout defaulted like a tenant upstream's and route's, and its
// resolved view attached (SharedService.Resolved). s is not modified.
func DefaultedSharedService(s *SharedService) *SharedService {
	c := *s
	u, ru := defaultedUpstream(s.connection())
	sp := &c.Spec
	sp.Endpoints, sp.LBPolicy, sp.ConnectTimeout, sp.Protocol = u.Endpoints, u.LBPolicy, u.ConnectTimeout, u.Protocol
	sp.HealthCheck, sp.OutlierDetection = u.HealthCheck, u.OutlierDetection
	ru.Upstream = &u
	c.resolved = &ResolvedSharedService{of: &c, Timeout: setDur(&sp.Timeout, DefaultRouteTimeout), Upstream: ru}
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
