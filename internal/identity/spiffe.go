// Package identity defines who may talk to the control plane: the SPIFFE
// IDs tenantmesh's certificates carry (one URI SAN each) and the reading of
// an authenticated gRPC peer's ID. It is a leaf package (no etcd, no xDS
// state) so that the xDS server, the CLI and the tests can share it.
//
// The scheme, with <td> the trust domain (default DefaultTrustDomain):
//
//	spiffe://<td>/edge/<name>                          an Envoy edge
//	spiffe://<td>/tenant/<tenant>/service/<service>    a tenant service's sidecar Envoy or grpc-server
//	spiffe://<td>/grpc/<name>                          a proxyless gRPC client
//	spiffe://<td>/ratelimit/<name>                     envoyproxy/ratelimit
//	spiffe://<td>/controlplane                         the control plane (server certificate)
//
// A certificate of one kind names exactly the node it may be: a service
// ID binds a tenant and one of its upstreams, so a sidecar of tenant-a can
// be told apart from one of tenant-b by its certificate alone, whatever
// its node metadata claims.
package identity

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// DefaultTrustDomain is the trust domain of `tenantmesh certs` unless told
// otherwise.
const DefaultTrustDomain = "tenantmesh.local"

// Kind is what an ID identifies.
type Kind string

// The kinds of the scheme.
const (
	KindEdge         Kind = "edge"
	KindService      Kind = "service" // a sidecar or grpc-server of a tenant upstream
	KindGRPC         Kind = "grpc"
	KindRatelimit    Kind = "ratelimit"
	KindControlPlane Kind = "controlplane"
)

// ID is a parsed tenantmesh SPIFFE ID. Name is set for edge, grpc and
// ratelimit; Tenant and Service for a service; none for the control plane.
type ID struct {
	TrustDomain string
	Kind        Kind
	Tenant      string
	Service     string
	Name        string
}

// ErrInvalidID wraps every reason ParseSPIFFE or Validate refuses an ID.
var ErrInvalidID = errors.New("invalid tenantmesh SPIFFE ID")

var (
	// SPIFFE ID spec §2.1: trust domain of lowercase letters, digits,
	// dots, dashes and underscores.
	trustDomainRE = regexp.MustCompile(`^[a-z0-9._-]+$`)
	// SPIFFE ID spec §2.2: path segments of letters, digits, dots,
	// dashes and underscores; "." and ".." are not segments.
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// Tenant ids are DNS labels (tenants.ValidateTenantID).
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidID, fmt.Sprintf(format, args...))
}

// Edge is the ID of the edge Envoy name.
func Edge(trustDomain, name string) ID {
	return ID{TrustDomain: trustDomain, Kind: KindEdge, Name: name}
}

// Service is the ID of the sidecar (or grpc-server) of a tenant upstream.
func Service(trustDomain, tenant, service string) ID {
	return ID{TrustDomain: trustDomain, Kind: KindService, Tenant: tenant, Service: service}
}

// GRPC is the ID of the proxyless gRPC client name.
func GRPC(trustDomain, name string) ID {
	return ID{TrustDomain: trustDomain, Kind: KindGRPC, Name: name}
}

// Ratelimit is the ID of the envoyproxy/ratelimit instance name.
func Ratelimit(trustDomain, name string) ID {
	return ID{TrustDomain: trustDomain, Kind: KindRatelimit, Name: name}
}

// ControlPlane is the ID of the control plane's server certificate.
func ControlPlane(trustDomain string) ID {
	return ID{TrustDomain: trustDomain, Kind: KindControlPlane}
}

// String is the spiffe:// URI of id (unchecked: see Validate).
func (id ID) String() string {
	p := "spiffe://" + id.TrustDomain
	switch id.Kind {
	case KindService:
		return p + "/tenant/" + id.Tenant + "/service/" + id.Service
	case KindControlPlane:
		return p + "/controlplane"
	default:
		return p + "/" + string(id.Kind) + "/" + id.Name
	}
}

// Validate reports why id cannot be written as a tenantmesh SPIFFE ID.
func (id ID) Validate() error {
	if !trustDomainRE.MatchString(id.TrustDomain) || len(id.TrustDomain) > 255 {
		return invalid("trust domain %q: want lowercase letters, digits, '.', '-', '_'", id.TrustDomain)
	}
	seg := func(what, v string) error {
		if v == "." || v == ".." || !segmentRE.MatchString(v) {
			return invalid("%s %q: want letters, digits, '.', '-', '_'", what, v)
		}
		return nil
	}
	switch id.Kind {
	case KindEdge, KindGRPC, KindRatelimit:
		if id.Tenant != "" || id.Service != "" {
			return invalid("kind %s takes a name, not a tenant or service", id.Kind)
		}
		return seg(string(id.Kind)+" name", id.Name)
	case KindService:
		if id.Name != "" {
			return invalid("kind service takes a tenant and a service, not a name")
		}
		if !dnsLabelRE.MatchString(id.Tenant) || len(id.Tenant) > 63 {
			return invalid("tenant %q: want a DNS label", id.Tenant)
		}
		return seg("service", id.Service)
	case KindControlPlane:
		if id.Tenant != "" || id.Service != "" || id.Name != "" {
			return invalid("kind controlplane takes no name")
		}
		return nil
	default:
		return invalid("kind %q: want edge, service, grpc, ratelimit or controlplane", id.Kind)
	}
}

// URI is the validated spiffe:// URI of id.
func (id ID) URI() (*url.URL, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(id.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidID, err)
	}
	return u, nil
}

// ParseSPIFFE reads a tenantmesh SPIFFE ID. Anything else is refused:
// another scheme, a user, port, query or fragment, an unknown path shape,
// percent-encoding (the SPIFFE spec forbids it in IDs).
func ParseSPIFFE(uri string) (ID, error) {
	rest, ok := strings.CutPrefix(uri, "spiffe://")
	if !ok {
		return ID{}, invalid("%q: not a spiffe:// URI", uri)
	}
	if strings.ContainsAny(rest, "?#%@:") {
		return ID{}, invalid("%q: a SPIFFE ID has no user, port, query, fragment or percent-encoding", uri)
	}
	td, path, _ := strings.Cut(rest, "/")
	segs := strings.Split(path, "/")
	var id ID
	switch {
	case len(segs) == 1 && segs[0] == "controlplane":
		id = ControlPlane(td)
	case len(segs) == 2 && (segs[0] == string(KindEdge) || segs[0] == string(KindGRPC) || segs[0] == string(KindRatelimit)):
		id = ID{TrustDomain: td, Kind: Kind(segs[0]), Name: segs[1]}
	case len(segs) == 4 && segs[0] == "tenant" && segs[2] == "service":
		id = Service(td, segs[1], segs[3])
	default:
		return ID{}, invalid("%q: path /%s is none of /edge/NAME, /tenant/TENANT/service/SERVICE, /grpc/NAME, /ratelimit/NAME, /controlplane", uri, path)
	}
	if err := id.Validate(); err != nil {
		return ID{}, fmt.Errorf("%q: %w", uri, err)
	}
	return id, nil
}
