package tenants

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// addressLabel also allows '_': container runtimes (docker compose
	// service names) resolve such names, though public DNS does not.
	addressLabel = regexp.MustCompile(`^[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?$`)
	identifier   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

const dnsLabelRule = "a DNS label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"

// dnsLabelProblem explains why s is not a DNS label, or returns "".
func dnsLabelProblem(s string) string {
	switch {
	case s == "":
		return "required; must be " + dnsLabelRule
	case len(s) > 63:
		return fmt.Sprintf("%q is %d characters long; must be %s", s, len(s), dnsLabelRule)
	case !dnsLabel.MatchString(s):
		return fmt.Sprintf("%q is not %s", s, dnsLabelRule)
	}
	return ""
}

// identifierProblem explains why s is not an identifier (features).
func identifierProblem(s string) string {
	if len(s) > 63 || !identifier.MatchString(s) {
		return fmt.Sprintf("%q is not an identifier: a lower-case letter followed by a-z, 0-9, '_' or '-', at most 63 characters", s)
	}
	return ""
}

// dnsNameProblem explains why s is not a lower-case DNS name (labels
// matching label, 253 characters at most), or returns "".
func dnsNameProblem(s string, label *regexp.Regexp) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > 253 {
		return fmt.Sprintf("%d characters long; a DNS name has at most 253", len(s))
	}
	if strings.HasSuffix(s, ".") {
		return "must not end with '.'"
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" {
			return "has an empty label ('..' or a leading '.')"
		}
		if len(l) > 63 {
			return fmt.Sprintf("label %q is longer than 63 characters", l)
		}
		if !label.MatchString(l) {
			return fmt.Sprintf("label %q may only hold a-z, 0-9 and '-', and must start and end with a letter or digit", l)
		}
	}
	return ""
}

// addressProblem explains why s is neither an IP address nor a host name.
func addressProblem(s string) string {
	if s == "" {
		return "required: a host name or IP address"
	}
	if net.ParseIP(s) != nil {
		return ""
	}
	if strings.Contains(s, "://") {
		return fmt.Sprintf("%q must be a bare host name or IP address, without a scheme", s)
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return fmt.Sprintf("%q must not carry a port; use the port field", s)
	}
	if msg := dnsNameProblem(strings.ToLower(s), addressLabel); msg != "" {
		return fmt.Sprintf("%q is not a host name or IP address: %s", s, msg)
	}
	return ""
}

// checkHostPort validates a host:port address of a service tenantmesh or
// Envoy dials.
func checkHostPort(e *errs, p Path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		e.add(p, "%q is not host:port: %v", s, splitErr(err))
		return
	}
	if msg := addressProblem(host); msg != "" {
		e.add(p, "host %s", msg)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		e.add(p, "port %q must be a number from 1 to 65535", port)
	}
}

// splitErr drops the repeated address from net.SplitHostPort's message.
func splitErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// checkPort validates a port number where 0 means "use the default".
func checkPort(e *errs, p Path, port int) {
	if port < 0 || port > 65535 {
		e.add(p, "%d is not a port: must be from 1 to 65535 (0 or unset: default)", port)
	}
}

// checkDuration validates an optional duration: when set it must parse as
// a Go duration ("15s", "250ms") and be positive.
func checkDuration(e *errs, p Path, d Duration) {
	if !d.IsSet() {
		return
	}
	v, err := d.Parse()
	if err != nil {
		e.add(p, "%q is not a duration: use a number with a unit such as 250ms, 15s or 1m", string(d))
		return
	}
	if v <= 0 {
		e.add(p, "%q must be positive", string(d))
	}
}

// checkNonNegative validates a count or threshold where 0 means default.
func checkNonNegative(e *errs, p Path, v int) {
	if v < 0 {
		e.add(p, "%d must not be negative", v)
	}
}

// isLoopback reports whether host names this machine only, the one place
// where plain http cannot be intercepted on the network.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// checkEnum reports v when it is set and not one of allowed.
func checkEnum[T ~string](e *errs, p Path, v T, allowed ...T) {
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	e.add(p, "%q is not one of %s", string(v), joinQuoted(allowed))
}

func joinQuoted[T ~string](vs []T) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = string(v)
	}
	return strings.Join(q, ", ")
}
