package tenants

// AdminTLS is how a sidecar verifies the control plane's admin server.
type AdminTLS struct {
	// CAFile is a PEM bundle of the CAs that may sign the admin server's
	// certificate: an absolute path in the sidecar's file system.
	CAFile string `json:"caFile"`
	// SAN is the subject alternative name the certificate must carry: a
	// DNS name, or an IP address. Default: the host of controlPlaneAdmin.
	SAN string `json:"san,omitempty"`
}

// ServiceTLS is how an edge Envoy reaches one of the gRPC services it
// calls for every request (ext_authz, the rate limit service) over TLS.
// The paths are files in the edge's file system, the same in every edge
// of the fleet (the MeshConfig is fleet-wide): mount them there.
type ServiceTLS struct {
	// CAFile is a PEM bundle of the CAs that may sign the service's
	// certificate: an absolute path.
	CAFile string `json:"caFile"`
	// SAN is the subject alternative name the service's certificate must
	// carry: a DNS name, an IP address, or a spiffe:// URI (matched as a
	// URI SAN, e.g. spiffe://tenantmesh.local/controlplane). Default: the
	// host of the service's address.
	SAN string `json:"san,omitempty"`
	// CertFile and KeyFile are the edge's client certificate, for a
	// service that requires mutual TLS: absolute paths, both or neither.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}
