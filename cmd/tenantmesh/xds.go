package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tenantmesh/tenantmesh/contract"
	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/xds/adsclient"
	"github.com/tenantmesh/tenantmesh/xds/translate"
)

func newXDSCmd(g *globals) *cobra.Command {
	return groupCmd("xds", "Inspect what the xDS server sends and who is connected", newXDSDumpCmd(g), newXDSNodesCmd(g))
}

type dumpFlags struct {
	address, nodeID, role, tenant, service string
	tls                                    tlsconfig.ClientFiles
	appPort                                int
	delta, rateLimit                       bool
	timeout, quiet                         time.Duration
}

func newXDSDumpCmd(g *globals) *cobra.Command {
	f := dumpFlags{}
	c := &cobra.Command{
		Use:   "dump",
		Short: "Connect over ADS like an Envoy would and print what that node receives",
		Long: `Opens an ADS stream to the xDS server as the given node, subscribes to every
resource type (wildcard), ACKs each response, and prints the resources once the
stream is quiet: the answer to "what does my Envoy see?".`,
		Example: `  tenantmesh xds dump --node-id edge-1 --role edge -o yaml
  tenantmesh xds dump --node-id grpc-1 --role grpc -o table
  tenantmesh xds dump --xds-address cp.internal:18000 --xds-tls-ca certs/debug/ca.crt \
      --xds-tls-cert certs/debug/tls.crt --xds-tls-key certs/debug/tls.key --role edge`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runXDSDump(cmd.Context(), g, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.address, "xds-address", controlplane.DefaultXDSListen, "host:port of the xDS server")
	fl.StringVar(&f.tls.CA, "xds-tls-ca", "", "PEM CA file verifying the xDS server; enables TLS")
	fl.StringVar(&f.tls.Cert, "xds-tls-cert", "", "PEM client certificate for mutual TLS (tenantmesh certs)")
	fl.StringVar(&f.tls.Key, "xds-tls-key", "", "PEM private key of --xds-tls-cert")
	fl.StringVar(&f.tls.ServerName, "xds-server-san", "", "DNS name or IP the server's certificate must carry (default the host of --xds-address)")
	fl.StringVar(&f.nodeID, "node-id", "tenantmesh-dump", "node id to present")
	fl.StringVar(&f.role, "role", "edge", "node role: edge, grpc or sidecar")
	fl.StringVar(&f.tenant, "tenant", "", "sidecar: the tenant of the service")
	fl.StringVar(&f.service, "service", "", "sidecar: the upstream (service) name")
	fl.IntVar(&f.appPort, "app-port", 0, "sidecar: the local application port")
	fl.BoolVar(&f.delta, "delta", false, "use the incremental (delta) ADS protocol")
	fl.BoolVar(&f.rateLimit, "ratelimit", false, "also ask for the RateLimitConfig (what envoyproxy/ratelimit receives)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
	fl.DurationVar(&f.quiet, "quiet", 500*time.Millisecond, "stop once the stream has been quiet this long")
	return c
}

func runXDSDump(ctx context.Context, g *globals, f dumpFlags) error {
	switch translate.Role(f.role) {
	case translate.RoleEdge, translate.RoleGRPC, translate.RoleSidecar:
	default:
		return usageError{fmt.Errorf("--role %q: want edge, grpc or sidecar", f.role)}
	}
	meta := map[string]*structpb.Value{contract.NodeMetaRole: structpb.NewStringValue(f.role)}
	if f.tenant != "" {
		meta[contract.NodeMetaTenant] = structpb.NewStringValue(f.tenant)
	}
	if f.service != "" {
		meta[contract.NodeMetaService] = structpb.NewStringValue(f.service)
	}
	if f.appPort != 0 {
		meta[contract.NodeMetaAppPort] = structpb.NewNumberValue(float64(f.appPort))
	}
	node := &corev3.Node{Id: f.nodeID, Cluster: "tenantmesh-dump", Metadata: &structpb.Struct{Fields: meta}}
	types := []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType}
	if translate.Role(f.role) == translate.RoleEdge {
		// The tenants' virtual hosts of edge-routes come by VHDS.
		types = append(types, resourcev3.VirtualHostType)
	}
	if f.rateLimit {
		types = append(types, translate.RateLimitConfigType)
	}

	creds := insecure.NewCredentials()
	if f.tls != (tlsconfig.ClientFiles{}) {
		cfg, err := f.tls.Config()
		if err != nil {
			return usageError{err}
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(f.address, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512<<20)))
	if err != nil {
		return fmt.Errorf("xds server %s: %w", f.address, err)
	}
	defer func() {
		if cerr := conn.Close(); cerr != nil {
			fmt.Fprintf(g.stderr, "warning: close connection: %v\n", cerr)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	snap, err := adsclient.Fetch(ctx, conn, node, f.delta, types, f.quiet)
	if err != nil {
		return fmt.Errorf("xds server %s: %w (is `tenantmesh serve` running? start one with `make run`)", f.address, err)
	}
	return printSnapshot(g, snap, types)
}

// printSnapshot prints resources grouped by type, in a stable order.
func printSnapshot(g *globals, snap adsclient.Snapshot, types []string) error {
	if g.output == "table" {
		var rows [][]string
		for _, typ := range types {
			for _, name := range sortedNames(snap[typ]) {
				rows = append(rows, []string{shortTypeName(typ), name})
			}
		}
		return printTable(g.stdout, []string{"TYPE", "NAME"}, rows)
	}
	out := map[string][]json.RawMessage{}
	mo := protojson.MarshalOptions{UseProtoNames: true}
	for _, typ := range types {
		list := []json.RawMessage{}
		for _, name := range sortedNames(snap[typ]) {
			b, err := mo.Marshal(snap[typ][name])
			if err != nil {
				return fmt.Errorf("encode %s %s: %w", typ, name, err)
			}
			list = append(list, b)
		}
		out[shortTypeName(typ)] = list
	}
	_, err := g.printStructured(out)
	return err
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shortTypeName(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}
