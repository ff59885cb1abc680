// Package bootstrap builds the static configuration a data-path client
// needs to find tenantmesh: the Envoy v3 Bootstrap of edge proxies and
// sidecars, and the grpc-go xDS bootstrap of proxyless gRPC clients.
//
// Building is pure (Options in, proto or JSON out); writing files is the
// caller's business. Everything else an Envoy runs with — listeners,
// routes, clusters, endpoints — comes over ADS from the control plane, so
// the bootstrap only says who the node is (its role:
// docs/architecture.md#node-roles-and-resource-names) and where the xDS
// server lives.
package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tenantmesh/tenantmesh/contract"
)

// Defaults of the options.
const (
	DefaultAdminPort = 9901
	// DefaultMaxDownstreamConnections caps open downstream connections per
	// Envoy (overload manager). An edge without a cap can be driven out of
	// file descriptors and memory by one misbehaving client population.
	DefaultMaxDownstreamConnections = 50000
	// XDSClusterName is the static cluster that reaches the xDS server.
	XDSClusterName = "xds_cluster"
	// XDSConnectTimeout bounds connecting to the xDS server.
	XDSConnectTimeout = 5 * time.Second
	// Back-off of the ADS stream: Envoy's own defaults (500ms, 30s) written
	// out, so that a whole fleet reconnecting after a control plane restart
	// spreads over the interval (Envoy jitters within it) instead of
	// hammering a cold server, and so an operator sees what is in effect.
	XDSRetryBaseInterval = 500 * time.Millisecond
	XDSRetryMaxInterval  = 30 * time.Second
	// HTTP/2 PING keepalive on the ADS connection: a control plane that
	// vanished without a FIN (node died, network partition) is noticed in
	// interval+timeout instead of the kernel's TCP timeout (minutes).
	XDSKeepaliveInterval = 30 * time.Second
	XDSKeepaliveTimeout  = 5 * time.Second
)

// RoleRatelimit is envoyproxy/ratelimit, configured by environment
// variables (Ratelimit) rather than a bootstrap file. It is not one of
// contract's node roles: the control plane recognises it by what it
// subscribes to, not by node metadata.
const RoleRatelimit contract.Role = "ratelimit"

// Options describe one xDS client.
type Options struct {
	// NodeID is node.id; tenantmesh does not interpret it, but Envoy's
	// stats and the control plane's logs name the node by it.
	NodeID string
	// Cluster is node.cluster (default: tenantmesh-edge, tenantmesh-grpc,
	// or <tenant>.<service> for a sidecar or grpc-server — its service).
	Cluster string
	// Role is the node role the control plane translates for.
	Role contract.Role
	// Tenant, Service and AppPort describe the workload of a sidecar or a
	// proxyless gRPC server (role grpc-server): the tenant upstream it is
	// and the port the application listens on.
	Tenant, Service string
	AppPort         int
	// AppAddress is the IP a grpc-server listens on (default 0.0.0.0 on
	// the control plane's side); the Listener it is sent carries exactly
	// this address, and grpc-go refuses one that differs from its own.
	AppAddress string

	// XDSAddress is host:port of the xDS server. An IP address makes the
	// xds cluster STATIC, a name STRICT_DNS (every address the name
	// resolves to is a control plane replica).
	XDSAddress string
	// SotW selects the state-of-the-world ADS protocol instead of delta.
	// Sidecars only: an edge's routes come by VHDS, which needs delta.
	SotW bool
	// TLS secures the connection to the xDS server (nil: plaintext).
	TLS *TLSFiles

	// AdminPort is the port of Envoy's admin interface, always bound to
	// loopback: it can change runtime values and shut Envoy down.
	AdminPort int
	// MaxDownstreamConnections caps downstream connections (default
	// DefaultMaxDownstreamConnections).
	MaxDownstreamConnections int
}

// TLSFiles are PEM files, read by the client (paths inside its file
// system, not this machine's), and the name the server must prove.
type TLSFiles struct {
	// CA verifies the xDS server's certificate; required.
	CA string
	// Cert and Key are the client certificate for mutual TLS; both or none.
	Cert, Key string
	// ServerSAN is the subject alternative name the xDS server's
	// certificate must carry: a DNS name, an IP, or a spiffe:// URI
	// (Envoy only). Default: the host of XDSAddress. A certificate of the
	// CA without it is refused, so a client certificate of the same CA
	// cannot pose as the control plane.
	ServerSAN string
}

// serverSAN is the SAN the client checks: ServerSAN, default the host of
// XDSAddress.
func (o Options) serverSAN() string {
	if o.TLS.ServerSAN != "" {
		return o.TLS.ServerSAN
	}
	return o.xdsHost()
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dnsName is a host name as a certificate's DNS SAN carries it
	// (a leading "*." wildcard is the certificate's business, not ours).
	dnsName = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`)
)

// ErrInvalidOptions wraps every problem found by Validate.
var ErrInvalidOptions = errors.New("invalid bootstrap options")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

// withDefaults returns o with unset fields filled in.
func (o Options) withDefaults() Options {
	if o.Cluster == "" {
		if o.Role == contract.RoleSidecar || o.Role == contract.RoleGRPCServer {
			o.Cluster = contract.ClusterName(o.Tenant, o.Service)
		} else {
			o.Cluster = "tenantmesh-" + string(o.Role)
		}
	}
	if o.AdminPort == 0 {
		o.AdminPort = DefaultAdminPort
	}
	if o.MaxDownstreamConnections == 0 {
		o.MaxDownstreamConnections = DefaultMaxDownstreamConnections
	}
	return o
}

// Validate reports the first problem of o. Options that belong to another
// role are errors rather than ignored: a sidecar flag on an edge is a
// mistake that would otherwise only show as missing traffic.
func (o Options) Validate() error {
	if o.NodeID == "" {
		return invalid("a node id is required")
	}
	switch o.Role {
	case contract.RoleEdge, contract.RoleGRPC, RoleRatelimit:
		if o.Tenant != "" || o.Service != "" || o.AppPort != 0 {
			return invalid("tenant, service and app port describe a sidecar's or grpc-server's workload; role %q takes none", o.Role)
		}
	case contract.RoleSidecar, contract.RoleGRPCServer:
		if !dnsLabel.MatchString(o.Tenant) || len(o.Tenant) > 63 {
			return invalid("role %s needs its tenant id (a DNS label), got %q", o.Role, o.Tenant)
		}
		if o.Service == "" {
			return invalid("role %s needs the name of the tenant upstream (service) it is", o.Role)
		}
		if o.AppPort < 1 || o.AppPort > 65535 {
			return invalid("role %s needs the application's port (1-65535), got %d", o.Role, o.AppPort)
		}
	default:
		return invalid("role %q: want edge, sidecar, grpc, grpc-server or ratelimit", o.Role)
	}
	if o.SotW && o.Role == contract.RoleEdge {
		// Envoy refuses a VHDS subscription whose config source is not
		// DELTA_GRPC, or ADS whose bootstrap ads_config is not DELTA_GRPC
		// (source/common/router/vhds.cc, createVhdsSubscription), and the
		// edge's edge-routes takes every tenant's routes by VHDS: a SotW
		// edge would never get a tenant route. Refused rather than quietly
		// switched to delta, so the flag never says what the file does not.
		return invalid("role edge needs delta ADS: its tenants' routes come by VHDS, which Envoy only accepts over DELTA_GRPC; drop --sotw (it is for sidecars)")
	}
	if o.AppAddress != "" && (o.Role != contract.RoleGRPCServer || net.ParseIP(o.AppAddress) == nil) {
		return invalid("app address %q: only a grpc-server takes one, and it must be the IP the server listens on", o.AppAddress)
	}
	if _, _, err := splitHostPort(o.XDSAddress); err != nil {
		return invalid("xDS address: %v", err)
	}
	if o.AdminPort < 0 || o.AdminPort > 65535 {
		return invalid("admin port %d is not a port", o.AdminPort)
	}
	if o.MaxDownstreamConnections < 0 {
		return invalid("max downstream connections %d must not be negative", o.MaxDownstreamConnections)
	}
	if t := o.TLS; t != nil {
		if t.CA == "" {
			return invalid("TLS to the xDS server needs a CA file: without one the client would not verify the control plane it takes its whole configuration from")
		}
		if (t.Cert == "") != (t.Key == "") {
			return invalid("a TLS client certificate needs both the certificate and the key file")
		}
		if err := validSAN(t.ServerSAN); err != nil {
			return err
		}
	}
	return nil
}

// xdsHost is the host of XDSAddress (Validate has checked its form).
func (o Options) xdsHost() string {
	host, _, err := net.SplitHostPort(o.XDSAddress)
	if err != nil {
		return o.XDSAddress
	}
	return host
}

// validSAN checks a --xds-server-san value (empty: the default).
func validSAN(san string) error {
	if san == "" || net.ParseIP(san) != nil {
		return nil
	}
	if rest, ok := strings.CutPrefix(san, "spiffe://"); ok {
		if u, err := url.Parse(san); err != nil || rest == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return invalid("server SAN %q: not a spiffe://<trust-domain>/<path> URI", san)
		}
		return nil
	}
	if len(san) > 253 || !dnsName.MatchString(san) {
		return invalid("server SAN %q: want a DNS name, an IP address or a spiffe:// URI", san)
	}
	return nil
}

// splitHostPort parses host:port with a numeric port in range.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", addr, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not 1-65535", addr, p)
	}
	return host, port, nil
}
