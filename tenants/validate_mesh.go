package tenants

import "strings"

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
	validatePlatformHosts(e, p.Child("platformHosts"), s.PlatformHosts)
	if s.Authz.Address != "" {
		checkHostPort(e, p.Child("authz").Child("address"), s.Authz.Address)
	}
	checkDuration(e, p.Child("authz").Child("timeout"), s.Authz.Timeout)
	if s.RateLimit.Address != "" {
		checkHostPort(e, p.Child("rateLimit").Child("address"), s.RateLimit.Address)
	}
	checkDuration(e, p.Child("rateLimit").Child("timeout"), s.RateLimit.Timeout)
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

// validatePlatformHosts checks MeshConfig spec.platformHosts: host names
// as a tenant's hosts are spelled, but exact ones — the platform serves
// them on the shared virtual host, whatever the name (see
// validate_reserved.go for what reserving them does).
func validatePlatformHosts(e *errs, p Path, hosts []string) {
	seen := make(map[string]bool, len(hosts))
	for i, h := range hosts {
		switch msg := hostProblem(h); {
		case msg != "":
			e.add(p.Index(i), "%s", msg)
		case strings.Contains(h, "*"):
			e.add(p.Index(i), "%q: platform hosts are exact names, without wildcards", h)
		case seen[h]:
			e.add(p.Index(i), "host %q is listed twice", h)
		}
		seen[h] = true
	}
}
