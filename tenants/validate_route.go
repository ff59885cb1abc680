package tenants

import (
	"regexp"
	"strings"

	"github.com/tenantmesh/tenantmesh/contract"
)

// HTTPMethods are the methods a route may match.
var HTTPMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

// RetryOn are the Envoy retry_on conditions a route may retry on.
var RetryOn = []string{"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "refused-stream", "retriable-status-codes"}

// MaxRetryAttempts bounds retries: each one multiplies upstream load
// exactly when the upstream is struggling.
const MaxRetryAttempts = 10

// MaxBodyBytesLimit bounds the request body Envoy buffers per request for
// validation; Envoy holds it in memory for every in-flight request.
const MaxBodyBytesLimit = 1 << 20

// headerName is an RFC 9110 field name (token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func validateRoutes(e *errs, p Path, routes []Route, upstreams map[string]bool) {
	seen := make(map[string]bool, len(routes))
	for i := range routes {
		r := &routes[i]
		rp := p.Index(i)
		if msg := dnsLabelProblem(r.Name); msg != "" {
			e.add(rp.Child("name"), "%s", msg)
		} else if seen[r.Name] {
			e.add(rp.Child("name"), "route name %q is used twice", r.Name)
		}
		seen[r.Name] = true
		validateMatch(e, rp.Child("match"), &r.Match)
		switch {
		case r.Upstream == "":
			e.add(rp.Child("upstream"), "required: the name of one of spec.upstreams")
		case !upstreams[r.Upstream]:
			e.add(rp.Child("upstream"), "unknown upstream %q: no entry of spec.upstreams has that name", r.Upstream)
		}
		checkDuration(e, rp.Child("timeout"), r.Timeout)
		if r.Retries != nil {
			validateRetries(e, rp.Child("retries"), r.Retries)
		}
		for j, role := range r.Roles {
			if strings.TrimSpace(role) == "" || !printable(role) {
				e.add(rp.Child("roles").Index(j), "must be a non-empty role name")
			}
		}
		validateFeatures(e, rp.Child("features"), r.Features)
		if r.RequestValidation != nil {
			validateRequestValidation(e, rp.Child("requestValidation"), r.RequestValidation)
		}
		validateHeaderMutation(e, rp.Child("requestHeaders"), r.RequestHeaders)
		validateHeaderMutation(e, rp.Child("responseHeaders"), r.ResponseHeaders)
		validateRateLimits(e, rp.Child("rateLimit"), r.RateLimit)
	}
}

func validateMatch(e *errs, p Path, m *RouteMatch) {
	switch {
	case m.PathPrefix == "" && m.Path == "":
		e.add(p, "set exactly one of pathPrefix and path")
	case m.PathPrefix != "" && m.Path != "":
		e.add(p, "set exactly one of pathPrefix and path, not both")
	case m.PathPrefix != "":
		if msg := routePathProblem(m.PathPrefix); msg != "" {
			e.add(p.Child("pathPrefix"), "%q %s", m.PathPrefix, msg)
		}
	default:
		if msg := routePathProblem(m.Path); msg != "" {
			e.add(p.Child("path"), "%q %s", m.Path, msg)
		}
	}
	seen := make(map[string]bool, len(m.Methods))
	for i, method := range m.Methods {
		mp := p.Child("methods").Index(i)
		switch {
		case contains(HTTPMethods, method):
			if seen[method] {
				e.add(mp, "method %s is listed twice", method)
			}
		case contains(HTTPMethods, strings.ToUpper(method)):
			e.add(mp, "%q must be upper case (%s)", method, strings.ToUpper(method))
		default:
			e.add(mp, "%q is not an HTTP method (want one of %s)", method, strings.Join(HTTPMethods, ", "))
		}
		seen[method] = true
	}
}

// routePathProblem explains why a path could never match what the user
// means: the edge listener normalizes paths, merges slashes and rejects
// escaped slashes before routing, so such a route would be dead or, worse,
// suggest a protection that does not exist.
func routePathProblem(s string) string {
	switch {
	case !strings.HasPrefix(s, "/"):
		return "must start with '/'"
	case strings.Contains(s, ".."):
		return "must not contain '..': paths are normalized before matching"
	case strings.Contains(strings.ToLower(s), "%2f"), strings.Contains(strings.ToLower(s), "%5c"):
		return "must not contain an escaped slash (%2F, %5C): the edge rejects such requests"
	case strings.Contains(s, "//"):
		return "must not contain '//': slashes are merged before matching"
	case strings.ContainsAny(s, "?#"):
		return "must not contain a query or fragment ('?', '#')"
	case !printable(s) || strings.ContainsAny(s, " \t"):
		return "must not contain spaces or control characters"
	}
	return ""
}

func validateRetries(e *errs, p Path, r *Retries) {
	if r.Attempts < 0 || r.Attempts > MaxRetryAttempts {
		e.add(p.Child("attempts"), "%d must be from 0 to %d", r.Attempts, MaxRetryAttempts)
	}
	seen := make(map[string]bool, len(r.On))
	for i, on := range r.On {
		switch {
		case !contains(RetryOn, on):
			e.add(p.Child("on").Index(i), "unknown retry condition %q (want one of %s)", on, strings.Join(RetryOn, ", "))
		case seen[on]:
			e.add(p.Child("on").Index(i), "retry condition %q is listed twice", on)
		}
		seen[on] = true
	}
	checkDuration(e, p.Child("perTryTimeout"), r.PerTryTimeout)
}

func validateRequestValidation(e *errs, p Path, rv *RequestValidation) {
	if len(rv.BodySchema) == 0 || string(rv.BodySchema) == "null" {
		e.add(p.Child("bodySchema"), "required: a JSON Schema object the request body must match")
	} else if _, err := CompileBodySchema(rv.BodySchema, rv.MaxBodyBytes); err != nil {
		e.add(p.Child("bodySchema"), "%v", err)
	}
	if rv.MaxBodyBytes < 0 || rv.MaxBodyBytes > MaxBodyBytesLimit {
		e.add(p.Child("maxBodyBytes"), "%d must be from 1 to %d (1 MiB; 0 or unset: %d)", rv.MaxBodyBytes, MaxBodyBytesLimit, DefaultMaxBodyBytes)
	}
}

func validateHeaderMutation(e *errs, p Path, m *HeaderMutation) {
	if m == nil {
		return
	}
	set := make(map[string]string, len(m.Set)) // lower-cased → as written
	for _, name := range sortedKeys(m.Set) {
		np := p.Child("set").Key(name)
		if msg := headerNameProblem(name); msg != "" {
			e.add(np, "%s", msg)
			continue
		}
		if prev, dup := set[strings.ToLower(name)]; dup {
			e.add(np, "header %q is set twice (also as %q): header names are case-insensitive", name, prev)
		}
		set[strings.ToLower(name)] = name
		if strings.ContainsFunc(m.Set[name], isHeaderValueControl) {
			e.add(np, "header value must not contain CR, LF, NUL or other control characters")
		}
	}
	for i, name := range m.Remove {
		rp := p.Child("remove").Index(i)
		if msg := headerNameProblem(name); msg != "" {
			e.add(rp, "%s", msg)
		} else if prev, both := set[strings.ToLower(name)]; both {
			e.add(rp, "header %q is both set (as %q) and removed", name, prev)
		}
	}
}

// headerNameProblem rejects names Envoy cannot mutate (pseudo-headers,
// host) and the x-tenant-* headers whose only author is tenantmesh: a
// tenant able to set them could claim another tenant's identity upstream.
func headerNameProblem(name string) string {
	lower := strings.ToLower(name)
	switch {
	case name == "":
		return "header name must not be empty"
	case strings.HasPrefix(name, ":"):
		return "pseudo-headers (':…') cannot be changed"
	case !headerName.MatchString(name):
		return "not a valid header name: only letters, digits and !#$%&'*+-.^_`|~ are allowed"
	case lower == "host":
		return "host cannot be changed: it selects the tenant"
	case strings.HasPrefix(lower, contract.TenantHeaderPrefix):
		return "x-tenant-* headers are set by tenantmesh only"
	}
	return ""
}

// isHeaderValueControl reports characters an HTTP field value may not
// hold (RFC 9110 §5.5): controls other than horizontal tab. CR and LF
// would let a value inject further headers.
func isHeaderValueControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }
