package translate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// checkTenant rejects what would make Envoy (or grpc-go) NACK the shared
// resources the tenant joins, or route the tenant's traffic wrongly. The
// tenants package validates manifests for users; this is the translator's
// own guard, so one tenant that slipped through (an older stored value, a
// validation gap) costs only itself instead of the edge-routes NACK of
// every tenant.
func checkTenant(t *tenants.Tenant) error {
	// Resource names are built from the id ("<id>.<upstream>",
	// "<id>/<route>", local bucket "<id>"); a DNS label keeps them
	// unambiguous and clear of the names tenantmesh uses itself.
	if !isDNSLabel(t.ID()) {
		return fmt.Errorf("metadata.name: %q is not a DNS label", t.ID())
	}
	s := &t.Spec
	seenHost := map[string]bool{}
	for i, h := range s.Hosts {
		h = strings.ToLower(h)
		switch {
		case h == "":
			return fmt.Errorf("spec.hosts[%d]: empty host", i)
		case strings.ContainsAny(h, "*:/ "):
			// A "*" would be a second "*" in the domain "*|<host>", which
			// Envoy reads as a literal (only a leading or trailing one is a
			// wildcard, docs/gate.md), so the host could never match; the
			// edge port is added by hostKeys; a path is no part of a host.
			return fmt.Errorf("spec.hosts[%d]: %q: wildcards, ports and paths are not allowed in hosts", i, h)
		case seenHost[h]:
			return fmt.Errorf("spec.hosts[%d]: duplicate host %q", i, h)
		}
		seenHost[h] = true
	}
	ups := map[string]bool{}
	for i, u := range s.Upstreams {
		if u.Name == "" || strings.ContainsAny(u.Name, "/ ") {
			return fmt.Errorf("spec.upstreams[%d].name: %q is not a valid upstream name", i, u.Name)
		}
		if ups[u.Name] {
			return fmt.Errorf("spec.upstreams[%d].name: duplicate upstream %q", i, u.Name)
		}
		ups[u.Name] = true
		if len(u.Endpoints) == 0 {
			return fmt.Errorf("spec.upstreams[%d].endpoints: at least one endpoint is required", i)
		}
		seenEP := map[string]bool{}
		for j, e := range u.Endpoints {
			if e.Address == "" || e.Port <= 0 || e.Port > 65535 {
				return fmt.Errorf("spec.upstreams[%d].endpoints[%d]: invalid address %q port %d", i, j, e.Address, e.Port)
			}
			// grpc-go NACKs duplicate endpoint addresses in an EDS response.
			k := strings.ToLower(e.Address) + ":" + strconv.Itoa(e.Port)
			if seenEP[k] {
				return fmt.Errorf("spec.upstreams[%d].endpoints[%d]: duplicate endpoint %s", i, j, k)
			}
			seenEP[k] = true
		}
	}
	routes := map[string]bool{}
	for i, r := range s.Routes {
		p := fmt.Sprintf("spec.routes[%d]", i)
		if r.Name == "" || strings.ContainsAny(r.Name, "/ ") {
			return fmt.Errorf("%s.name: %q is not a valid route name", p, r.Name)
		}
		if routes[r.Name] {
			return fmt.Errorf("%s.name: duplicate route %q", p, r.Name)
		}
		routes[r.Name] = true
		if !ups[r.Upstream] {
			return fmt.Errorf("%s.upstream: unknown upstream %q", p, r.Upstream)
		}
		m := r.Match
		if (m.PathPrefix == "") == (m.Path == "") {
			return fmt.Errorf("%s.match: exactly one of pathPrefix and path is required", p)
		}
		for _, v := range []string{m.PathPrefix, m.Path} {
			if v != "" && (!strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?#")) {
				return fmt.Errorf("%s.match: %q must start with / and hold no query or fragment", p, v)
			}
		}
		for _, meth := range m.Methods {
			if !isMethod(meth) {
				return fmt.Errorf("%s.match.methods: %q is not an HTTP method (upper-case letters)", p, meth)
			}
		}
		if rt := r.Retries; rt != nil {
			for _, on := range rt.On {
				if !retryOn[on] {
					return fmt.Errorf("%s.retries.on: unknown retry condition %q", p, on)
				}
			}
		}
		for _, hm := range []*tenants.HeaderMutation{r.RequestHeaders, r.ResponseHeaders} {
			if err := checkHeaderMutation(hm); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

// checkHeaderMutation rejects mutations Envoy refuses at config load
// (pseudo-headers, host).
func checkHeaderMutation(hm *tenants.HeaderMutation) error {
	if hm == nil {
		return nil
	}
	bad := func(n string) bool {
		n = strings.ToLower(n)
		return n == "" || strings.HasPrefix(n, ":") || n == "host"
	}
	for k := range hm.Set {
		if bad(k) {
			return fmt.Errorf("header %q may not be modified", k)
		}
	}
	for _, k := range hm.Remove {
		if bad(k) {
			return fmt.Errorf("header %q may not be removed", k)
		}
	}
	return nil
}

func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// retryOn are Envoy's HTTP and gRPC retry_on conditions.
var retryOn = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range []string{
		"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
		"envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
		"retriable-headers", "http3-post-connect-failure",
		"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
	} {
		m[c] = true
	}
	return m
}()

func isMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
