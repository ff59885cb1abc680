package translate

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tenantmesh/tenantmesh/envoy"
)

// SharedDomain is the outbound host name of a shared service from a
// sidecar: http://<name>.shared/.
func SharedDomain(name string) string { return name + ".shared" }

// outboundListener is sidecar-outbound, bound to loopback only: it is the
// application's way out, never reachable from the network. It runs no
// authorization of its own: what it can reach is decided by which routes
// exist, and every callee's inbound sidecar verifies x-tenant-context.
func (sc *sidecarConfig) outboundListener() (*listenerv3.Listener, error) {
	lr, err := envoy.LocalReplyConfig()
	if err != nil {
		return nil, err
	}
	// Everything leaving through this listener is the sidecar's tenant's:
	// only its workload reaches the loopback port.
	tier := ""
	if sc.tenant != nil {
		tier = sc.tenant.Spec.Tier
	}
	alog, err := envoy.FixedTenantAccessLog(sc.node.Tenant, tier)
	if err != nil {
		return nil, err
	}
	hcm, err := sidecarHCM(SidecarOutboundName, nil, lr, alog)
	if err != nil {
		return nil, err
	}
	return envoy.HTTPListener(envoy.HTTPListenerOptions{
		Name: SidecarOutboundName, Address: "127.0.0.1", Port: sc.mesh.Spec.SidecarOutboundPort,
	}, hcm)
}

// outboundRoutes hold one virtual host per service of the sidecar's own
// tenant and one per shared service the tenant is entitled to, plus a
// JSON 404 for everything else. The application names a service by Host
// (ports are stripped before matching):
//
//	http://<upstream>/…           a service of the same tenant
//	http://<upstream>.<tenant>/…  the same, fully qualified
//	http://<name>.shared/…        a shared service, through the tenant's alias
//
// for example with HTTP_PROXY=http://127.0.0.1:15001, or by sending to
// 127.0.0.1:15001 with that Host header. Another tenant's service has no
// virtual host here at all: a call to it is answered 404 by the catch-all,
// so cross-tenant traffic is impossible by construction.
//
// Every route overwrites x-tenant-id with the sidecar's tenant (for the
// callee's logs; a value the application set for another tenant is
// replaced). Envoy cannot mint x-tenant-context, so the application must
// forward the one it received; the callee's inbound sidecar verifies it.
func (sc *sidecarConfig) outboundRoutes() (*routev3.RouteConfiguration, error) {
	var vhosts []*routev3.VirtualHost
	taken := map[string]bool{}
	tenantHdr := []*corev3.HeaderValueOption{envoy.HeaderOverwrite(TenantHeader, sc.node.Tenant)}
	rm, err := resolvedMesh(sc.mesh)
	if err != nil {
		return nil, err
	}
	if t := sc.tenant; t != nil {
		for i := range t.Spec.Upstreams {
			u := &t.Spec.Upstreams[i]
			domains := []string{u.Name, u.Name + "." + t.ID()}
			for _, d := range domains {
				taken[d] = true
			}
			vhosts = append(vhosts, outboundVirtualHost(u.Name, domains, ClusterName(t.ID(), u.Name), rm.SidecarRouteTimeout, tenantHdr))
		}
		for _, s := range sc.shared {
			d := SharedDomain(s.Name())
			if taken[d] {
				// Only possible for a tenant named "shared" with an upstream
				// of the same name: its own service wins.
				continue
			}
			rs, err := resolvedShared(s)
			if err != nil {
				return nil, err
			}
			vhosts = append(vhosts, outboundVirtualHost(d, []string{d}, SharedClusterName(t.ID(), s.Name()), rs.Timeout, tenantHdr))
		}
	}
	notFound, err := catchAllRoute()
	if err != nil {
		return nil, err
	}
	// The outbound listener has no ext_authz filter; the edge's per-route
	// "disabled" config would be ignored, but keep the route minimal.
	notFound.TypedPerFilterConfig, notFound.Metadata = nil, nil
	vhosts = append(vhosts, &routev3.VirtualHost{Name: CatchAllRouteName, Domains: []string{"*"}, Routes: []*routev3.Route{notFound}})
	return &routev3.RouteConfiguration{Name: SidecarOutboundName, VirtualHosts: vhosts}, nil
}

func outboundVirtualHost(name string, domains []string, cluster string, timeout time.Duration, hdr []*corev3.HeaderValueOption) *routev3.VirtualHost {
	return &routev3.VirtualHost{
		Name:    name,
		Domains: domains,
		Routes: []*routev3.Route{{
			Name:  name,
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
				Timeout:          envoy.Duration(timeout),
			}},
			RequestHeadersToAdd: hdr,
		}},
	}
}
