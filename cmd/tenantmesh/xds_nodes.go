package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/xds"
)

type nodesFlags struct {
	address          string
	timeout          time.Duration
	incompatibleOnly bool
}

func newXDSNodesCmd(g *globals) *cobra.Command {
	f := nodesFlags{}
	c := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes connected to the xDS server and their Envoy versions",
		Long: `Reads /debug/xds from the control plane's private admin listener
(serve --admin-private-listen, default 127.0.0.1:9103) and lists every
connected node: its role, tenant and node group, the program behind it
(node.user_agent_name: "envoy", "gRPC Go", ...), the version it reported, and
whether it is an Envoy older than the minimum version the generated
configuration needs (docs/xds.md, "Minimum Envoy version"). Such an Envoy
rejects or misapplies parts of the configuration.`,
		Example: `  tenantmesh xds nodes
  tenantmesh xds nodes --admin-address 127.0.0.1:9103 -o json
  kubectl -n tenantmesh-system port-forward deploy/tenantmesh 9103 &  # then: tenantmesh xds nodes
  tenantmesh xds nodes --incompatible   # exit 1 if any Envoy is too old`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runXDSNodes(cmd.Context(), g, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.address, "admin-address", controlplane.DefaultAdminPrivateListen, "host:port (or URL) of the control plane's private admin listener (serve --admin-private-listen)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "give up after this long")
	fl.BoolVar(&f.incompatibleOnly, "incompatible", false, "list only Envoys older than the minimum version, and exit 1 if there are any")
	return c
}

// nodesView is what -o json|yaml prints.
type nodesView struct {
	MinEnvoyVersion string          `json:"minEnvoyVersion"`
	Nodes           []xds.DebugNode `json:"nodes"`
}

func runXDSNodes(ctx context.Context, g *globals, f nodesFlags) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	info, err := fetchDebugXDS(ctx, f.address)
	if err != nil {
		return err
	}
	view := nodesView{MinEnvoyVersion: info.MinEnvoyVersion, Nodes: []xds.DebugNode{}}
	old := 0
	for _, n := range info.Nodes {
		if n.Incompatible {
			old++
		}
		if !f.incompatibleOnly || n.Incompatible {
			view.Nodes = append(view.Nodes, n)
		}
	}
	if err := printNodes(g, view); err != nil {
		return err
	}
	if old == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d node(s) run an Envoy older than %s, the minimum this configuration needs (docs/xds.md, Minimum Envoy version)", old, info.MinEnvoyVersion)
	if f.incompatibleOnly {
		return fmt.Errorf("%s", msg)
	}
	fmt.Fprintf(g.stderr, "warning: %s\n", msg)
	return nil
}

func printNodes(g *globals, v nodesView) error {
	if done, err := g.printStructured(v); done || err != nil {
		return err
	}
	rows := make([][]string, 0, len(v.Nodes))
	for _, n := range v.Nodes {
		incompatible := "no"
		if n.Incompatible {
			incompatible = "yes (< " + v.MinEnvoyVersion + ")"
		}
		rows = append(rows, []string{n.ID, n.Role, orNone(n.Tenant), n.Group, orNone(n.Identity), orNone(n.Client), orNone(n.Version),
			strconv.Itoa(n.Streams), incompatible})
	}
	return printTable(g.stdout, []string{"NODE", "ROLE", "TENANT", "GROUP", "IDENTITY", "CLIENT", "VERSION", "STREAMS", "INCOMPATIBLE"}, rows)
}

// fetchDebugXDS reads the xDS server's /debug/xds over the private admin
// address.
func fetchDebugXDS(ctx context.Context, address string) (info xds.DebugInfo, err error) {
	base := address
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimSuffix(base, "/") + "/debug/xds"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return info, usageError{fmt.Errorf("--admin-address %q: %w", address, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return info, fmt.Errorf("admin server %s: %w (is `tenantmesh serve` running? see its --admin-private-listen)", address, err)
	}
	defer func() {
		if cerr := resp.Body.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", url, cerr)
		}
	}()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return info, fmt.Errorf("GET %s: %s: /debug/xds is served on the private admin listener (serve --admin-private-listen, default %s), "+
				"not the public one (--admin-listen), and only when the xds part runs", url, resp.Status, controlplane.DefaultAdminPrivateListen)
		}
		return info, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, fmt.Errorf("decode %s: %w", url, err)
	}
	return info, nil
}
