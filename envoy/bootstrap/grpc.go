package bootstrap

import (
	"encoding/json"
	"fmt"

	"github.com/tenantmesh/tenantmesh/contract"
)

// grpcBootstrap is the grpc-go xDS bootstrap file (gRFC A27, A65 for TLS),
// the file GRPC_XDS_BOOTSTRAP points at.
type grpcBootstrap struct {
	XDSServers []grpcServer `json:"xds_servers"`
	Node       grpcNode     `json:"node"`
	// ServerListenerTemplate names the Listener an xDS-enabled gRPC server
	// asks for (grpc-go puts its listening host:port in place of %s).
	ServerListenerTemplate string `json:"server_listener_resource_name_template,omitempty"`
}

type grpcServer struct {
	ServerURI    string      `json:"server_uri"`
	ChannelCreds []grpcCreds `json:"channel_creds"`
	// xds_v3 is what selects the v3 transport protocol in older clients;
	// current ones speak only v3 and accept it.
	ServerFeatures []string `json:"server_features"`
}

type grpcCreds struct {
	Type   string         `json:"type"`
	Config *grpcTLSConfig `json:"config,omitempty"`
}

type grpcTLSConfig struct {
	CACertificateFile string `json:"ca_certificate_file"`
	CertificateFile   string `json:"certificate_file,omitempty"`
	PrivateKeyFile    string `json:"private_key_file,omitempty"`
}

type grpcNode struct {
	ID       string         `json:"id"`
	Cluster  string         `json:"cluster"`
	Metadata map[string]any `json:"metadata"`
}

// GRPC renders the grpc-go xDS bootstrap (JSON) of a proxyless gRPC
// client (role grpc) or server (role grpc-server, for xds.NewGRPCServer):
// grpc-go speaks SotW ADS only, and has no admin port, so those options do
// not apply.
func GRPC(o Options) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Role != contract.RoleGRPC && o.Role != contract.RoleGRPCServer {
		return nil, invalid("role %q runs an Envoy: it takes the Envoy bootstrap, not the grpc-go one", o.Role)
	}
	if o.SotW {
		return nil, invalid("grpc-go always uses the state-of-the-world protocol; the SotW option is for Envoys")
	}
	if err := dialHostSAN(o, "grpc-go checks the server certificate against the host of server_uri"); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	creds := grpcCreds{Type: "insecure"}
	if t := o.TLS; t != nil {
		// gRFC A65 "tls" channel credentials: grpc-go's file_watcher
		// provider (credentials/tls/certprovider/pemfile) re-reads the
		// files every refresh_interval (default 10 min), so rotated
		// certificates apply to the next connection without a restart.
		creds = grpcCreds{Type: "tls", Config: &grpcTLSConfig{CACertificateFile: t.CA, CertificateFile: t.Cert, PrivateKeyFile: t.Key}}
	}
	b := grpcBootstrap{
		XDSServers: []grpcServer{{ServerURI: o.XDSAddress, ChannelCreds: []grpcCreds{creds}, ServerFeatures: []string{"xds_v3"}}},
		Node:       grpcNode{ID: o.NodeID, Cluster: o.Cluster, Metadata: map[string]any{contract.NodeMetaRole: string(o.Role)}},
	}
	if o.Role == contract.RoleGRPCServer {
		b.Node.Metadata[contract.NodeMetaTenant] = o.Tenant
		b.Node.Metadata[contract.NodeMetaService] = o.Service
		b.Node.Metadata[contract.NodeMetaAppPort] = o.AppPort
		if o.AppAddress != "" {
			b.Node.Metadata[contract.NodeMetaAppAddress] = o.AppAddress
		}
		b.ServerListenerTemplate = contract.GRPCServerListenerTemplate
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("grpc bootstrap of node %s: %w", o.NodeID, err)
	}
	return append(out, '\n'), nil
}

// dialHostSAN refuses a server SAN other than the dialled host for clients
// that verify the host they dial and nothing else (grpc-go, and
// envoyproxy/ratelimit through grpc-go's TLS credentials).
func dialHostSAN(o Options, why string) error {
	if o.TLS == nil || o.TLS.ServerSAN == "" || o.TLS.ServerSAN == o.xdsHost() {
		return nil
	}
	return invalid("server SAN %q: %s (%s), so the certificate must carry that name; drop --xds-server-san or make it equal",
		o.TLS.ServerSAN, why, o.xdsHost())
}
