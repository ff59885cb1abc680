package tenants

import "strings"

// MaxEndpointWeight is Envoy's limit on load balancing weights that keeps
// the sum of a locality's weights well inside uint32.
const MaxEndpointWeight = 128

func validateUpstreams(e *errs, p Path, ups []Upstream) {
	seen := make(map[string]bool, len(ups))
	for i := range ups {
		u := &ups[i]
		up := p.Index(i)
		if msg := dnsLabelProblem(u.Name); msg != "" {
			e.add(up.Child("name"), "%s", msg)
		} else if seen[u.Name] {
			e.add(up.Child("name"), "upstream name %q is used twice", u.Name)
		}
		seen[u.Name] = true
		if len(u.Endpoints) == 0 {
			e.add(up.Child("endpoints"), "at least one endpoint is required")
		}
		for j := range u.Endpoints {
			validateEndpoint(e, up.Child("endpoints").Index(j), &u.Endpoints[j])
		}
		checkEnum(e, up.Child("lbPolicy"), u.LBPolicy, LBRoundRobin, LBLeastRequest, LBRandom, LBRingHash, LBMaglev)
		checkEnum(e, up.Child("protocol"), u.Protocol, ProtocolHTTP1, ProtocolHTTP2, ProtocolGRPC)
		checkDuration(e, up.Child("connectTimeout"), u.ConnectTimeout)
		if u.HealthCheck != nil {
			validateHealthCheck(e, up.Child("healthCheck"), u.HealthCheck, u.Protocol)
		}
		if cb := u.CircuitBreaker; cb != nil {
			cp := up.Child("circuitBreaker")
			checkNonNegative(e, cp.Child("maxConnections"), cb.MaxConnections)
			checkNonNegative(e, cp.Child("maxPendingRequests"), cb.MaxPendingRequests)
			checkNonNegative(e, cp.Child("maxRequests"), cb.MaxRequests)
			checkNonNegative(e, cp.Child("maxRetries"), cb.MaxRetries)
		}
		if od := u.OutlierDetection; od != nil {
			op := up.Child("outlierDetection")
			checkNonNegative(e, op.Child("consecutive5xx"), od.Consecutive5xx)
			checkDuration(e, op.Child("interval"), od.Interval)
			checkDuration(e, op.Child("baseEjectionTime"), od.BaseEjectionTime)
			if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
				e.add(op.Child("maxEjectionPercent"), "%d must be a percentage from 0 to 100", od.MaxEjectionPercent)
			}
		}
	}
}

func validateEndpoint(e *errs, p Path, ep *Endpoint) {
	if msg := addressProblem(ep.Address); msg != "" {
		e.add(p.Child("address"), "%s", msg)
	}
	if ep.Port < 1 || ep.Port > 65535 {
		e.add(p.Child("port"), "%d is not a port: must be from 1 to 65535", ep.Port)
	}
	if ep.Weight < 0 || ep.Weight > MaxEndpointWeight {
		e.add(p.Child("weight"), "%d must be from 1 to %d (0 or unset: 1)", ep.Weight, MaxEndpointWeight)
	}
}

func validateHealthCheck(e *errs, p Path, hc *HealthCheck, protocol Protocol) {
	kinds := 0
	for _, set := range []bool{hc.HTTP != nil, hc.TCP, hc.GRPC != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		e.add(p, "set exactly one of http, tcp and grpc")
	case kinds > 1:
		e.add(p, "set exactly one of http, tcp and grpc, not several")
	case hc.GRPC != nil:
		// Only a gRPC server implements grpc.health.v1, and Envoy's gRPC
		// health checker speaks HTTP/2 (health_checker_impl.cc).
		if protocol != ProtocolGRPC {
			e.add(p.Child("grpc"), "a gRPC health check needs protocol grpc, got %q", protocol)
		}
		if s := hc.GRPC.Service; !printable(s) || strings.ContainsAny(s, " \t/") {
			e.add(p.Child("grpc").Child("service"), "must be a gRPC service name (no spaces, slashes or control characters)")
		}
	case hc.HTTP != nil:
		hp := p.Child("http")
		if !strings.HasPrefix(hc.HTTP.Path, "/") {
			e.add(hp.Child("path"), "%q must start with '/'", hc.HTTP.Path)
		} else if !printable(hc.HTTP.Path) || strings.ContainsAny(hc.HTTP.Path, " \t") {
			e.add(hp.Child("path"), "must not contain spaces or control characters")
		}
		if hc.HTTP.Host != "" {
			if msg := hostProblem(hc.HTTP.Host); msg != "" {
				e.add(hp.Child("host"), "%s", msg)
			}
		}
	}
	checkDuration(e, p.Child("interval"), hc.Interval)
	checkDuration(e, p.Child("timeout"), hc.Timeout)
	checkNonNegative(e, p.Child("unhealthyThreshold"), hc.UnhealthyThreshold)
	checkNonNegative(e, p.Child("healthyThreshold"), hc.HealthyThreshold)
}
