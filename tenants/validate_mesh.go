package tenants

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

func validateMeshSpec(e *errs, p Path, m *MeshConfig) {
	s := &m.Spec
	checkPort(e, p.Child("edgePort"), s.EdgePort)
	checkPort(e, p.Child("sidecarInboundPort"), s.SidecarInboundPort)
	checkPort(e, p.Child("sidecarOutboundPort"), s.SidecarOutboundPort)
	// Ports are compared after defaulting: an edge port set to the default
	// sidecar inbound port collides just as much as two explicit ones.
	d := DefaultedMeshConfig(m).Spec
	ports := []struct {
		field string
		port  int
		set   bool
	}{
		{"edgePort", d.EdgePort, s.EdgePort != 0},
		{"sidecarInboundPort", d.SidecarInboundPort, s.SidecarInboundPort != 0},
		{"sidecarOutboundPort", d.SidecarOutboundPort, s.SidecarOutboundPort != 0},
	}
	for i, a := range ports {
		for _, b := range ports[:i] {
			if a.port != b.port {
				continue
			}
			// Blame the port the user wrote, not the default it hit.
			if !a.set && b.set {
				a, b = b, a
			}
			e.add(p.Child(a.field), "port %d is also the %s; listener ports must be distinct", a.port, b.field)
		}
	}
	validateIssuers(e, p.Child("jwt"), s.JWT)
	if s.Authz.Address != "" {
		checkHostPort(e, p.Child("authz").Child("address"), s.Authz.Address)
	}
	checkDuration(e, p.Child("authz").Child("timeout"), s.Authz.Timeout)
	checkServiceTLS(e, p.Child("authz").Child("tls"), s.Authz.TLS)
	if s.RateLimit.Address != "" {
		checkHostPort(e, p.Child("rateLimit").Child("address"), s.RateLimit.Address)
	}
	checkDuration(e, p.Child("rateLimit").Child("timeout"), s.RateLimit.Timeout)
	checkServiceTLS(e, p.Child("rateLimit").Child("tls"), s.RateLimit.TLS)
	if s.ControlPlaneAdmin != "" {
		checkHostPort(e, p.Child("controlPlaneAdmin"), s.ControlPlaneAdmin)
	}
	if t := s.ControlPlaneAdminTLS; t != nil {
		tp := p.Child("controlPlaneAdminTLS")
		if !strings.HasPrefix(t.CAFile, "/") {
			e.add(tp.Child("caFile"), "%q must be an absolute path in the sidecar's file system (the mounted CA bundle)", t.CAFile)
		}
		if t.SAN != "" {
			if msg := addressProblem(t.SAN); msg != "" {
				e.add(tp.Child("san"), "%s", msg)
			}
		}
	}
}

// checkServiceTLS validates spec.authz.tls or spec.rateLimit.tls: files
// the edge reads (absolute paths, a client certificate as a pair) and the
// SAN it matches.
func checkServiceTLS(e *errs, p Path, t *ServiceTLS) {
	if t == nil {
		return
	}
	abs := func(field, v string) {
		if !strings.HasPrefix(v, "/") {
			e.add(p.Child(field), "%q must be an absolute path in the edge's file system (mount the file there)", v)
		}
	}
	abs("caFile", t.CAFile)
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		abs("certFile", t.CertFile)
		abs("keyFile", t.KeyFile)
	case t.CertFile != "":
		e.add(p.Child("keyFile"), "required with certFile: the edge's client certificate is a certificate and its key")
	case t.KeyFile != "":
		e.add(p.Child("certFile"), "required with keyFile: the edge's client certificate is a certificate and its key")
	}
	if t.SAN == "" {
		return
	}
	msg := ""
	if strings.HasPrefix(t.SAN, "spiffe://") {
		msg = spiffeProblem(t.SAN)
	} else if msg = addressProblem(t.SAN); msg != "" {
		msg += ", or a spiffe:// URI"
	}
	if msg != "" {
		e.add(p.Child("san"), "%s", msg)
	}
}

var (
	// SPIFFE ID spec §2.1 (trust domain) and §2.2 (path segments).
	spiffeTrustDomain = regexp.MustCompile(`^[a-z0-9._-]+$`)
	spiffeSegment     = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// spiffeProblem explains why s is not a SPIFFE ID of a workload
// (spiffe://<trust-domain>/<path>), or returns "". Envoy compares a URI
// SAN as a string, so an ID that no certificate can carry would refuse
// every connection.
func spiffeProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, "?#%@") {
		return fmt.Sprintf("%q is not a SPIFFE ID: spiffe://<trust-domain>/<path>, without user, port, query, fragment or percent-encoding", s)
	}
	if !spiffeTrustDomain.MatchString(u.Host) {
		return fmt.Sprintf("%q: trust domain %q may only hold a-z, 0-9, '.', '-' and '_' (no port)", s, u.Host)
	}
	path := strings.TrimPrefix(u.Path, "/")
	if path == "" {
		return fmt.Sprintf("%q names a trust domain, not a workload: add its path (e.g. spiffe://%s/controlplane)", s, u.Host)
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." || !spiffeSegment.MatchString(seg) {
			return fmt.Sprintf("%q: path segment %q may only hold letters, digits, '.', '-' and '_'", s, seg)
		}
	}
	return ""
}
