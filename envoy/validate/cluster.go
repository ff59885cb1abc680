package validate

import (
	"fmt"
	"net/netip"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
)

func init() {
	register(cluster)
	// Only a ClusterLoadAssignment delivered by EDS: the inline
	// load_assignment of a DNS cluster holds host names by design.
	registerRoot(clusterLoadAssignment)
}

// httpProtocolOptions is the one typed_extension_protocol_options key
// Envoy resolves HttpProtocolOptions under (by name:
// ClusterInfoImpl's parseExtensionProtocolOptions in
// source/common/upstream/upstream_impl.cc).
var (
	httpProtocolOptions     = string((&httpv3.HttpProtocolOptions{}).ProtoReflect().Descriptor().FullName())
	httpProtocolOptionsType = typeURL(&httpv3.HttpProtocolOptions{})
)

// cluster: source/common/upstream/upstream_impl.cc, the cluster factories
// (source/extensions/clusters/{eds,logical_dns,static}) and the gRPC health
// checker (source/extensions/health_checkers/grpc/health_checker_impl.cc).
func cluster(c *clusterv3.Cluster) []error {
	var errs []error
	name := func(err error) error { return fmt.Errorf("cluster %s: %w", c.GetName(), err) }
	for k, a := range c.GetTypedExtensionProtocolOptions() {
		if a.GetTypeUrl() == httpProtocolOptionsType && k != httpProtocolOptions {
			errs = append(errs, name(fmt.Errorf("typed_extension_protocol_options[%q]: HttpProtocolOptions must be keyed %s", k, httpProtocolOptions)))
		}
	}
	switch c.GetType() {
	case clusterv3.Cluster_EDS:
		// EdsClusterFactory: "cannot create an EDS cluster without an EDS config".
		if c.GetEdsClusterConfig() == nil {
			errs = append(errs, name(fmt.Errorf("cannot create an EDS cluster without an EDS config")))
		}
	case clusterv3.Cluster_LOGICAL_DNS:
		// LogicalDnsClusterFactory: "LOGICAL_DNS clusters must have a
		// single locality_lb_endpoint and a single lb_endpoint".
		le := c.GetLoadAssignment().GetEndpoints()
		if len(le) != 1 || len(le[0].GetLbEndpoints()) != 1 {
			errs = append(errs, name(fmt.Errorf("LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint")))
		}
	case clusterv3.Cluster_STATIC:
		for _, err := range ipEndpoints(c.GetLoadAssignment()) {
			errs = append(errs, name(fmt.Errorf("load_assignment.%w", err)))
		}
	}
	for i, hc := range c.GetHealthChecks() {
		if hc.GetGrpcHealthCheck() != nil && !http2(c) {
			errs = append(errs, name(fmt.Errorf("health_checks[%d]: cluster must support HTTP/2 for gRPC healthchecking", i)))
		}
	}
	return errs
}

// http2 reports whether the cluster speaks HTTP/2 upstream.
func http2(c *clusterv3.Cluster) bool {
	a := c.GetTypedExtensionProtocolOptions()[httpProtocolOptions]
	if a == nil {
		return c.GetHttp2ProtocolOptions() != nil //nolint:staticcheck // the deprecated field still selects HTTP/2
	}
	o := &httpv3.HttpProtocolOptions{}
	if err := proto.Unmarshal(a.GetValue(), o); err != nil {
		return false
	}
	if e := o.GetExplicitHttpConfig(); e != nil {
		return e.GetHttp2ProtocolOptions() != nil
	}
	return o.GetUseDownstreamProtocolConfig() != nil || o.GetAutoConfig() != nil
}

// clusterLoadAssignment: an EDS host must be an IP address
// (Network::Address::resolveProtoAddress in
// source/common/network/resolver_impl.cc: "malformed IP address: …
// Consider setting resolver_name or setting cluster type to 'STRICT_DNS'
// or 'LOGICAL_DNS'").
func clusterLoadAssignment(cla *endpointv3.ClusterLoadAssignment) []error {
	var errs []error
	for _, err := range ipEndpoints(cla) {
		errs = append(errs, fmt.Errorf("endpoints %s: %w", cla.GetClusterName(), err))
	}
	return errs
}

func ipEndpoints(cla *endpointv3.ClusterLoadAssignment) []error {
	var errs []error
	for i, le := range cla.GetEndpoints() {
		for j, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil || sa.GetResolverName() != "" {
				continue
			}
			if _, err := netip.ParseAddr(sa.GetAddress()); err != nil {
				errs = append(errs, fmt.Errorf("endpoints[%d].lb_endpoints[%d]: malformed IP address %q (EDS and STATIC hosts must be IPs)", i, j, sa.GetAddress()))
			}
		}
	}
	return errs
}
