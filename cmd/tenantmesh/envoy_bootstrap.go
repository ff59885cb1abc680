package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

func newEnvoyCmd(g *globals) *cobra.Command {
	return groupCmd("envoy", "Envoy bootstrap files", newEnvoyBootstrapCmd(g))
}

type bootstrapFlags struct {
	opts                   bootstrap.Options
	role                   string
	tlsCA, tlsCert, tlsKey string
	serverSAN              string
	out                    string
}

func newEnvoyBootstrapCmd(g *globals) *cobra.Command {
	f := &bootstrapFlags{}
	c := &cobra.Command{
		Use:   "bootstrap",
		Short: "Print the bootstrap of an Envoy edge or sidecar (or of a proxyless gRPC client, or ratelimit's environment)",
		Long: `Prints the static configuration a data-path client starts with: who the node
is (node id, cluster, metadata role/tenant/service/appPort) and where the xDS
server is. Everything else — listeners, routes, clusters, endpoints — arrives
over ADS: delta, or for a sidecar state of the world with --sotw. An edge
takes its tenants' routes by VHDS, which Envoy only accepts over delta, so
--role edge refuses --sotw.

For --role edge and sidecar the output is an Envoy v3 bootstrap (YAML; JSON
with -o json): envoy -c FILE. For --role grpc (a proxyless gRPC client) and
grpc-server (a grpc-go xds.NewGRPCServer of a tenant service) it is the
grpc-go xDS bootstrap (JSON) that GRPC_XDS_BOOTSTRAP points at. For --role
ratelimit it is the environment (KEY=VALUE lines, a docker compose env_file)
of envoyproxy/ratelimit's xDS client.

With --xds-tls-ca the client speaks TLS to the xDS server and checks its
certificate against the CA and a SAN: --xds-server-san (a DNS name, an IP,
or for Envoy a spiffe:// URI such as spiffe://tenantmesh.local/controlplane),
default the host of --xds-address; grpc-go always checks that host. With
--xds-tls-cert and --xds-tls-key it also presents a client certificate
(mutual TLS), which carries the node's identity (tenantmesh certs). Envoy
reads the files when it starts; grpc-go re-reads them every 10 minutes;
envoyproxy/ratelimit reads them once.

The admin interface is bound to 127.0.0.1 only: it can change runtime values
and stop Envoy.`,
		Example: `  tenantmesh envoy bootstrap --node-id edge-1 --role edge --xds-address tenantmesh:18000 > edge.yaml
  tenantmesh envoy bootstrap --node-id sidecar-a --role sidecar --tenant tenant-a --service executive \
      --app-port 8080 --xds-address tenantmesh:18000 --admin-port 9902
  tenantmesh envoy bootstrap --node-id grpc-1 --role grpc --xds-address tenantmesh:18000 > bootstrap.json
  tenantmesh envoy bootstrap --node-id edge-1 --role edge --xds-address tenantmesh:18000 \
      --xds-tls-ca /etc/tenantmesh/tls/ca.crt --xds-tls-cert /etc/tenantmesh/tls/tls.crt --xds-tls-key /etc/tenantmesh/tls/tls.key
  tenantmesh envoy bootstrap --node-id ratelimit --role ratelimit --xds-address tenantmesh:18000 > ratelimit.env`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runEnvoyBootstrap(cmd, g, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.opts.NodeID, "node-id", "", "node id (required; shows in the control plane's logs and Envoy's stats)")
	fl.StringVar(&f.role, "role", string(translate.RoleEdge), "node role: edge, sidecar, grpc, grpc-server or ratelimit")
	fl.StringVar(&f.opts.Tenant, "tenant", "", "sidecar, grpc-server: the tenant of the service")
	fl.StringVar(&f.opts.Service, "service", "", "sidecar, grpc-server: the tenant upstream (service) it is")
	fl.IntVar(&f.opts.AppPort, "app-port", 0, "sidecar, grpc-server: the port the application listens on")
	fl.StringVar(&f.opts.AppAddress, "app-address", "", "grpc-server: the IP the server listens on (default 0.0.0.0)")
	fl.StringVar(&f.opts.XDSAddress, "xds-address", controlplane.DefaultXDSListen, "host:port of the xDS server, as the proxy reaches it (a name: STRICT_DNS, every address is a replica)")
	fl.IntVar(&f.opts.AdminPort, "admin-port", bootstrap.DefaultAdminPort, "port of Envoy's admin interface on 127.0.0.1")
	fl.BoolVar(&f.opts.SotW, "sotw", false, "sidecar: use state-of-the-world ADS instead of delta (an edge needs delta for VHDS)")
	fl.StringVar(&f.opts.Cluster, "cluster", "", "node cluster (default tenantmesh-<role>; for a sidecar <tenant>.<service>)")
	fl.IntVar(&f.opts.MaxDownstreamConnections, "max-downstream-connections", bootstrap.DefaultMaxDownstreamConnections, "overload manager cap on open downstream connections")
	fl.StringVar(&f.tlsCA, "xds-tls-ca", "", "PEM CA file (path as the proxy sees it) verifying the xDS server; enables TLS")
	fl.StringVar(&f.tlsCert, "xds-tls-cert", "", "PEM client certificate for mutual TLS to the xDS server")
	fl.StringVar(&f.tlsKey, "xds-tls-key", "", "PEM private key of --xds-tls-cert")
	fl.StringVar(&f.serverSAN, "xds-server-san", "", "SAN the xDS server's certificate must carry: DNS name, IP or (Envoy) spiffe:// URI (default the host of --xds-address)")
	fl.StringVarP(&f.out, "out", "f", "", "write to this file instead of standard output")
	return c
}

func runEnvoyBootstrap(cmd *cobra.Command, g *globals, f *bootstrapFlags) error {
	o := f.opts
	o.Role = translate.Role(f.role)
	if f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "" || f.serverSAN != "" {
		o.TLS = &bootstrap.TLSFiles{CA: f.tlsCA, Cert: f.tlsCert, Key: f.tlsKey, ServerSAN: f.serverSAN}
	}
	out, err := renderBootstrap(o, g.output, generatedBy(cmd))
	if errors.Is(err, bootstrap.ErrInvalidOptions) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := os.WriteFile(f.out, out, 0o644); err != nil {
			return fmt.Errorf("write bootstrap: %w", err)
		}
		return nil
	}
	if _, err := g.stdout.Write(out); err != nil {
		return fmt.Errorf("write bootstrap: %w", err)
	}
	return nil
}

// renderBootstrap builds the file for o: grpc-go JSON for the grpc roles,
// KEY=VALUE lines for ratelimit, else the Envoy bootstrap as YAML (with a
// header naming the command that made it) or, for -o json, JSON.
func renderBootstrap(o bootstrap.Options, format, header string) ([]byte, error) {
	if o.Role == translate.RoleGRPC || o.Role == translate.RoleGRPCServer {
		return bootstrap.GRPC(o)
	}
	if o.Role == bootstrap.RoleRatelimit {
		env, err := bootstrap.Ratelimit(o)
		if err != nil {
			return nil, err
		}
		if format == "json" {
			m := map[string]string{}
			for _, e := range env {
				m[e.Name] = e.Value
			}
			j, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				return nil, fmt.Errorf("encode ratelimit environment: %w", err)
			}
			return append(j, '\n'), nil
		}
		return append([]byte(header), bootstrap.EnvFile(env)...), nil
	}
	b, err := bootstrap.Envoy(o)
	if err != nil {
		return nil, err
	}
	if format == "json" {
		j, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode bootstrap: %w", err)
		}
		return append(j, '\n'), nil
	}
	y, err := bootstrap.YAML(b)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), y...), nil
}

// generatedBy is a YAML comment with the command line that reproduces the
// file: the flags that were set, in name order (so the same flags always
// give the same bytes), --out left out.
func generatedBy(cmd *cobra.Command) string {
	var args []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if fl.Name == "out" || fl.Name == "output" {
			return
		}
		if fl.Value.Type() == "bool" {
			args = append(args, "--"+fl.Name)
			return
		}
		args = append(args, "--"+fl.Name+" "+fl.Value.String())
	})
	return "# Generated by: " + cmd.CommandPath() + " " + strings.Join(args, " ") +
		"\n# Do not edit; change the flags and regenerate.\n"
}
