package tenants

// SharedService is a service that every tenant, or every tenant with one
// of its features, may call: reached at the edge under /shared/<name>/ and
// from sidecars as http://<name>.shared/. Each tenant's calls go through
// the tenant's own cluster alias with its own circuit breakers, so one
// tenant cannot exhaust the service for the others. Stored at
// shared/<name>.
type SharedService struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta        `json:"metadata"`
	Spec     SharedServiceSpec `json:"spec"`
	// resolved is attached by DefaultedSharedService (resolved.go).
	resolved *ResolvedSharedService
}

// SharedServiceSpec is the desired state of a shared service. The
// connection fields mean what they mean on an Upstream.
type SharedServiceSpec struct {
	DisplayName      string            `json:"displayName,omitempty"`
	Endpoints        []Endpoint        `json:"endpoints"`
	LBPolicy         LBPolicy          `json:"lbPolicy,omitempty"`
	ConnectTimeout   Duration          `json:"connectTimeout,omitempty"`
	Protocol         Protocol          `json:"protocol,omitempty"`
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// Timeout bounds one request to the service (default 15s).
	Timeout Duration `json:"timeout,omitempty"`
	// Features entitle tenants: a tenant with any one of them may call the
	// service. Empty: every tenant may.
	Features []string `json:"features,omitempty"`
	// PerTenant are the limits every tenant's alias of the service gets.
	PerTenant *SharedPerTenant `json:"perTenant,omitempty"`
}

// SharedPerTenant are the per-tenant defaults of a shared service.
type SharedPerTenant struct {
	// CircuitBreaker thresholds of each tenant's alias cluster. The
	// tenant's own maxConcurrentRequests also caps max_requests: the
	// smaller of the two applies, so neither the service owner's cap nor
	// the tenant's budget can be exceeded.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
}

// GetTypeMeta implements Object.
func (s *SharedService) GetTypeMeta() *TypeMeta { return &s.TypeMeta }

// GetMeta implements Object.
func (s *SharedService) GetMeta() *ObjectMeta { return &s.Metadata }

// Name is the shared service's name (a DNS label).
func (s *SharedService) Name() string { return s.Metadata.Name }

// Entitles reports whether tenant t may call the service: t is active and
// the service lists no features or t has one of them. A suspended tenant
// is never entitled; there is no authz between a sidecar and a shared
// service, so suspension has to take its routes away.
func (s *SharedService) Entitles(t *Tenant) bool {
	if t == nil || !t.Active() {
		return false
	}
	if len(s.Spec.Features) == 0 {
		return true
	}
	for _, f := range s.Spec.Features {
		if t.HasFeature(f) {
			return true
		}
	}
	return false
}

// asUpstream views the service's connection settings as an Upstream
// named after the service, defaulted like a tenant's upstream, so they are
// validated exactly like a tenant's. Circuit breakers are per tenant and
// therefore not included. The result shares nothing mutable with s.
func (s *SharedService) asUpstream() Upstream {
	u, _ := defaultedUpstream(s.connection())
	return u
}

// connection is the service's connection settings as given, as an
// Upstream named after the service.
func (s *SharedService) connection() Upstream {
	return Upstream{
		Name:             s.Metadata.Name,
		Endpoints:        s.Spec.Endpoints,
		LBPolicy:         s.Spec.LBPolicy,
		ConnectTimeout:   s.Spec.ConnectTimeout,
		Protocol:         s.Spec.Protocol,
		HealthCheck:      s.Spec.HealthCheck,
		OutlierDetection: s.Spec.OutlierDetection,
	}
}

// AliasThresholds are the circuit breaker thresholds of tenant t's alias
// of the service: the service's per-tenant defaults, with max_requests
// capped by the tenant's maxConcurrentRequests (the smaller wins).
func (s *SharedService) AliasThresholds(t *Tenant) CircuitBreaker {
	var cb CircuitBreaker
	if p := s.Spec.PerTenant; p != nil && p.CircuitBreaker != nil {
		cb = *p.CircuitBreaker
	}
	if m := t.Spec.MaxConcurrentRequests; m > 0 && (cb.MaxRequests == 0 || m < cb.MaxRequests) {
		cb.MaxRequests = m
	}
	return cb
}
