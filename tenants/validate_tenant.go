package tenants

import (
	"fmt"
	"regexp"
	"strings"
)

// Locales are the languages error bodies are written in.
var Locales = []string{"en", "de", "fr"}

// quantity is the shape of a Kubernetes resource quantity (100m, 2Gi,
// 1.5, 1e3); the API server has the last word, this catches typos early.
var quantity = regexp.MustCompile(`^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

// quotaResources are the isolation quota keys tenantmesh knows how to map
// onto a Kubernetes ResourceQuota.
var quotaResources = []string{"cpu", "memory", "pods", "storage"}

// labelKey and labelValue follow the Kubernetes label syntax, for
// isolation.dedicatedNodes node selectors.
var (
	labelKey   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	labelValue = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
)

func validateTenantSpec(e *errs, p Path, s *TenantSpec, tiers map[string]*Tier) {
	if len(s.DisplayName) > 256 || !printable(s.DisplayName) {
		e.add(p.Child("displayName"), "must be printable UTF-8 of at most 256 bytes")
	}
	if s.Tier != "" && !tierKnown(s.Tier, tiers) {
		e.add(p.Child("tier"), "unknown tier %q (built-in tiers: free, standard, enterprise; others must be defined by a Tier object)", s.Tier)
	}
	checkEnum(e, p.Child("status"), s.Status, StatusActive, StatusSuspended)
	validateFeatures(e, p.Child("features"), s.Features)
	validateHosts(e, p.Child("hosts"), s.Hosts)
	validateIssuers(e, p.Child("auth").Child("jwt"), s.Auth.JWT)

	upstreams := make(map[string]bool, len(s.Upstreams))
	for _, u := range s.Upstreams {
		upstreams[u.Name] = true
	}
	validateRoutes(e, p.Child("routes"), s.Routes, upstreams)
	validateUpstreams(e, p.Child("upstreams"), s.Upstreams)
	validateRateLimits(e, p.Child("rateLimits"), s.RateLimits)
	if s.MaxConcurrentRequests < 0 {
		e.add(p.Child("maxConcurrentRequests"), "%d must not be negative (0 or unset: the tier's default)", s.MaxConcurrentRequests)
	}
	if s.Errors != nil {
		checkEnum(e, p.Child("errors").Child("locale"), s.Errors.Locale, Locales...)
	}
	if s.Isolation != nil {
		validateIsolation(e, p.Child("isolation"), s.Isolation)
	}
	if s.Audit != nil {
		validateTenantAudit(e, p.Child("audit"), s.Audit)
	}
}

// tierKnown reports whether a tenant may name tier: a built-in one or one
// of tiers (the stored tiers plus those applied in the same set).
func tierKnown(name string, tiers map[string]*Tier) bool {
	if _, ok := tiers[name]; ok {
		return true
	}
	_, ok := builtinTiers[name]
	return ok
}

func validateFeatures(e *errs, p Path, features []string) {
	seen := make(map[string]bool, len(features))
	for i, f := range features {
		if msg := identifierProblem(f); msg != "" {
			e.add(p.Index(i), "%s", msg)
		} else if seen[f] {
			e.add(p.Index(i), "feature %q is listed twice", f)
		}
		seen[f] = true
	}
}

// validateHosts checks the Host header values that select the tenant's
// virtual host. They are compared lower-cased and without port, so a
// manifest must spell them that way to mean what it says.
func validateHosts(e *errs, p Path, hosts []string) {
	seen := make(map[string]bool, len(hosts))
	for i, h := range hosts {
		if msg := hostProblem(h); msg != "" {
			e.add(p.Index(i), "%s", msg)
			continue
		}
		if seen[h] {
			e.add(p.Index(i), "host %q is listed twice", h)
		}
		seen[h] = true
	}
}

func hostProblem(h string) string {
	if h == "" {
		return "must not be empty"
	}
	if h != strings.ToLower(h) {
		return fmt.Sprintf("%q must be lower case (%q)", h, strings.ToLower(h))
	}
	if strings.Contains(h, "://") || strings.Contains(h, "/") {
		return fmt.Sprintf("%q must be a bare host name, without scheme or path", h)
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		return fmt.Sprintf("%q must not carry a port: Envoy matches hosts with the port stripped", h)
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return fmt.Sprintf("%q: a wildcard is only allowed as the whole leftmost label (*.example.com)", h)
	}
	if msg := dnsNameProblem(name, dnsLabel); msg != "" {
		return fmt.Sprintf("%q is not a DNS name: %s", h, msg)
	}
	return ""
}

func validateIsolation(e *errs, p Path, iso *Isolation) {
	if iso.Namespace != "" {
		if msg := dnsLabelProblem(iso.Namespace); msg != "" {
			e.add(p.Child("namespace"), "%s", msg)
		}
	}
	for _, k := range sortedKeys(iso.Quota) {
		kp := p.Child("quota").Key(k)
		known := false
		for _, r := range quotaResources {
			known = known || k == r
		}
		if !known {
			e.add(kp, "unknown quota resource %q (want one of %s)", k, strings.Join(quotaResources, ", "))
			continue
		}
		if v := iso.Quota[k]; !quantity.MatchString(v) {
			e.add(kp, "%q is not a Kubernetes quantity such as 500m, 2, 4Gi or 100", v)
		}
	}
	if iso.LimitRange != nil {
		validateLimitRange(e, p.Child("limitRange"), iso.LimitRange)
	}
	for _, k := range sortedKeys(iso.DedicatedNodes) {
		kp := p.Child("dedicatedNodes").Key(k)
		if len(k) > 253 || !labelKey.MatchString(k) {
			e.add(kp, "%q is not a Kubernetes label key", k)
		}
		if v := iso.DedicatedNodes[k]; len(v) > 63 || !labelValue.MatchString(v) {
			e.add(kp, "%q is not a Kubernetes label value (at most 63 characters of a-z, A-Z, 0-9, '-', '_', '.')", v)
		}
	}
}
