package translate

import (
	"errors"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	rlsconfv3 "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tenantmesh/tenantmesh/envoy"
	"github.com/tenantmesh/tenantmesh/envoy/validate"
)

// validateOne is the gate for one resource: validate.Resource (every proto
// rule through every Any, and Envoy's load-time rules), or, for the
// ratelimit protos that carry no generated validation, what
// envoyproxy/ratelimit requires.
func validateOne(kind string, m proto.Message) error {
	switch r := m.(type) {
	case *rlsconfv3.RateLimitConfig:
		return validateRLSConfig(r)
	case *rlsconfv3.RateLimitDescriptor:
		return validateRLSDescriptor(r, "descriptor")
	}
	if err := validate.Resource(m); err != nil {
		return fmt.Errorf("%s %s: %w", kind, nameOf(m), err)
	}
	return nil
}

func nameOf(m proto.Message) string {
	switch r := m.(type) {
	case interface{ GetName() string }:
		return r.GetName()
	case interface{ GetClusterName() string }:
		return r.GetClusterName()
	}
	return "?"
}

// ValidateRateLimitConfig is the gate for a RateLimitConfig (see
// validateRLSConfig).
func ValidateRateLimitConfig(r types.Resource) error { return validateOne("rate limit config", r) }

// validateRLSConfig checks what envoyproxy/ratelimit requires of its
// config (the ratelimit protos carry no generated validation): a domain,
// keys on every descriptor, unique key/value pairs per level, and limits
// with a unit and a positive count.
func validateRLSConfig(c *rlsconfv3.RateLimitConfig) error {
	if c.GetName() == "" || c.GetDomain() == "" {
		return fmt.Errorf("rate limit config %q: name and domain are required", c.GetName())
	}
	if err := validateRLSLevel(c.GetDescriptors(), c.GetName()); err != nil {
		return fmt.Errorf("rate limit config %s: %w", c.GetName(), err)
	}
	return nil
}

func validateRLSLevel(ds []*rlsconfv3.RateLimitDescriptor, path string) error {
	seen := map[string]bool{}
	for _, d := range ds {
		if err := validateRLSDescriptor(d, path); err != nil {
			return err
		}
		k := d.GetKey() + "=" + d.GetValue()
		if seen[k] {
			return fmt.Errorf("%s: duplicate descriptor %s", path, k)
		}
		seen[k] = true
	}
	return nil
}

func validateRLSDescriptor(d *rlsconfv3.RateLimitDescriptor, path string) error {
	path += "/" + d.GetKey() + "=" + d.GetValue()
	if d.GetKey() == "" {
		return fmt.Errorf("%s: descriptor without key", path)
	}
	if p := d.GetRateLimit(); p != nil && !p.GetUnlimited() {
		if p.GetUnit() == rlsconfv3.RateLimitUnit_UNKNOWN || p.GetRequestsPerUnit() == 0 {
			return fmt.Errorf("%s: limit needs a unit and a positive requests_per_unit", path)
		}
	}
	return validateRLSLevel(d.GetDescriptors(), path)
}

// validateParts runs the per-resource gate (validateOne) on everything one
// tenant contributes. The virtual host (edge) is also checked against the
// chain that serves it, edge (its typed_per_filter_config keys name
// edge-http's filters with their route-specific types), in the same walk.
// The other cross-resource rules need the assembled set.
func validateParts(p *TenantResources, edge validate.Filters) error {
	var errs []error
	check := func(kind string, m proto.Message) {
		if err := validateOne(kind, m); err != nil {
			errs = append(errs, err)
		}
	}
	if vh := p.VirtualHost; vh != nil {
		if err := edge.Resource(EdgeRouteConfigName, vh); err != nil {
			errs = append(errs, fmt.Errorf("virtual host %s: %w", vh.GetName(), err))
		}
	}
	for _, c := range p.Clusters {
		check("cluster", c)
	}
	for _, e := range p.Endpoints {
		check("endpoints", e)
	}
	for _, l := range p.Listeners {
		check("listener", l)
	}
	for _, r := range p.RouteConfigs {
		check("route configuration", r)
	}
	for _, d := range p.LocalRateLimits {
		check("local rate limit descriptor", d)
	}
	if p.RateLimit != nil {
		check("rate limit descriptor", p.RateLimit)
	}
	return errors.Join(errs...)
}

// Validate is the publish gate for a whole resource set: validate.Check
// (every resource deep, Envoy's load-time rules, the cross-resource rules),
// the RateLimitConfig rules, and Consistent.
func Validate(r *Resources) error {
	var errs []error
	if err := validate.Check(validate.Resources{
		Listeners: r.Listeners, Routes: r.Routes, Clusters: r.Clusters,
		Endpoints: r.Endpoints, VirtualHosts: r.VirtualHosts,
	}); err != nil {
		errs = append(errs, err)
	}
	for _, res := range r.RateLimitConfigs {
		if err := validateOne("rate limit config", res); err != nil {
			errs = append(errs, err)
		}
	}
	if err := Consistent(r); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Consistent checks the references between resources: every RDS name a
// listener (or API listener) uses has a RouteConfiguration, every route
// points at an existing cluster, every EDS cluster has a
// ClusterLoadAssignment and every ClusterLoadAssignment a cluster.
// go-control-plane's Snapshot.Consistent does the EDS/RDS part but does
// not look into API listeners (proxyless gRPC), so it would reject a
// correct grpc-role snapshot; this check covers both roles.
func Consistent(r *Resources) error {
	var errs []error
	routeConfigs := map[string]bool{}
	for _, res := range r.Routes {
		routeConfigs[nameOf(res)] = true
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, res := range r.Clusters {
		if c, ok := res.(*clusterv3.Cluster); ok {
			clusters[c.GetName()] = c
		}
	}
	cla := map[string]bool{}
	for _, res := range r.Endpoints {
		cla[nameOf(res)] = true
	}
	for _, res := range r.Listeners {
		l, ok := res.(*listenerv3.Listener)
		if !ok {
			continue
		}
		for _, name := range rdsNames(l) {
			if !routeConfigs[name] {
				errs = append(errs, fmt.Errorf("listener %s: route configuration %q does not exist", l.GetName(), name))
			}
		}
	}
	checkRoutes := func(owner string, vh *routev3.VirtualHost) {
		routes, err := envoy.TreeRoutes(vh)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", owner, err))
			return
		}
		for _, rt := range routes {
			if c := rt.GetRoute().GetCluster(); c != "" && clusters[c] == nil {
				errs = append(errs, fmt.Errorf("route %s: cluster %q does not exist", rt.GetName(), c))
			}
		}
	}
	vhds := map[string]bool{} // route configurations whose virtual hosts come by VHDS
	for _, res := range r.Routes {
		rc, ok := res.(*routev3.RouteConfiguration)
		if !ok {
			continue
		}
		if rc.GetVhds() != nil {
			vhds[rc.GetName()] = true
		}
		for _, vh := range rc.GetVirtualHosts() {
			checkRoutes("route configuration "+rc.GetName(), vh)
		}
	}
	for _, res := range r.VirtualHosts {
		vh, ok := res.(*routev3.VirtualHost)
		if !ok {
			continue
		}
		// VHDS names a virtual host "<route configuration>/<entry>".
		if i := strings.LastIndex(vh.GetName(), "/"); i < 0 || !vhds[vh.GetName()[:i]] {
			errs = append(errs, fmt.Errorf("virtual host %s: no route configuration with VHDS for it", vh.GetName()))
		}
		checkRoutes("virtual host "+vh.GetName(), vh)
	}
	// An EDS cluster's assignment is named by its eds service_name when it
	// has one (the tenants' aliases of a shared service share one).
	edsNames := map[string]bool{}
	for name, c := range clusters {
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		if sn := c.GetEdsClusterConfig().GetServiceName(); sn != "" {
			name = sn
		}
		edsNames[name] = true
		if !cla[name] {
			errs = append(errs, fmt.Errorf("cluster %s: no ClusterLoadAssignment %q", c.GetName(), name))
		}
	}
	for name := range cla {
		if !edsNames[name] {
			errs = append(errs, fmt.Errorf("endpoints %s: no EDS cluster of that name", name))
		}
	}
	return errors.Join(errs...)
}

// rdsNames are the route configuration names a listener's HCMs use.
func rdsNames(l *listenerv3.Listener) []string {
	var out []string
	add := func(a *anypb.Any) {
		hcm := &hcmv3.HttpConnectionManager{}
		if a.GetTypeUrl() != "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" {
			return
		}
		if err := proto.Unmarshal(a.GetValue(), hcm); err != nil {
			out = append(out, "<undecodable HCM: "+err.Error()+">")
			return
		}
		if n := hcm.GetRds().GetRouteConfigName(); n != "" {
			out = append(out, n)
		}
	}
	if api := l.GetApiListener().GetApiListener(); api != nil {
		add(api)
	}
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			add(f.GetTypedConfig())
		}
	}
	return out
}
