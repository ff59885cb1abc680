package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/envoy/bootstrap"
	"github.com/tenantmesh/tenantmesh/k8s"
	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newK8sCmd(g *globals) *cobra.Command {
	return groupCmd("k8s", "Kubernetes objects of tenants", newK8sRenderCmd(g))
}

type k8sRenderFlags struct {
	file      string
	placement bool
	opts      k8s.Options
	tls       bootstrap.TLSFiles
}

func newK8sRenderCmd(g *globals) *cobra.Command {
	f := &k8sRenderFlags{}
	c := &cobra.Command{
		Use:   "render TENANT",
		Short: "Print the Kubernetes isolation objects of a tenant (from etcd, or -f FILE)",
		Long: `Renders the per-tenant isolation objects from spec.isolation, for kubectl apply:
Namespace (Pod Security baseline enforced; node placement annotations for
dedicated nodes), ResourceQuota (cpu, memory, pods, storage), LimitRange
(container defaults), NetworkPolicy (ingress only from the tenant's own
namespace and the Envoy edge pods) and one sidecar Envoy bootstrap ConfigMap
per tenant upstream.

With --placement it prints instead the Deployment patch that pins pods to the
tenant's dedicated nodes (node affinity + tolerations), for clusters without
the PodNodeSelector/PodTolerationRestriction admission plugins.`,
		Example: `  tenantmesh k8s render tenant-a | kubectl apply -f -
  tenantmesh k8s render tenant-a -f examples/tenants/tenant-a.yaml
  tenantmesh k8s render tenant-a --placement > patch.yaml && kubectl -n tenant-a patch deployment executive --patch-file patch.yaml`,
		Args: exactArgs(1, "the tenant id"),
		RunE: func(cmd *cobra.Command, args []string) error { return runK8sRender(cmd.Context(), g, args[0], f) },
	}
	fl := c.Flags()
	fl.StringVarP(&f.file, "filename", "f", "", "read the tenant from this manifest file ('-': standard input) instead of etcd")
	fl.BoolVar(&f.placement, "placement", false, "print the dedicated-node Deployment patch instead of the objects")
	fl.StringVar(&f.opts.EdgeNamespace, "edge-namespace", k8s.DefaultEdgeNamespace, "namespace of the Envoy edge pods (allowed by the NetworkPolicy)")
	fl.StringToStringVar(&f.opts.EdgePodLabels, "edge-pod-labels", k8s.DefaultEdgePodLabels(), "labels of the Envoy edge pods")
	fl.StringVar(&f.opts.XDSAddress, "xds-address", k8s.DefaultXDSAddress, "xDS server address in the sidecar bootstraps")
	fl.StringVar(&f.tls.CA, "xds-tls-ca", "", "sidecars: PEM CA file (path in the sidecar container) verifying the xDS server; enables TLS")
	fl.StringVar(&f.tls.Cert, "xds-tls-cert", "", "sidecars: PEM client certificate for mutual TLS (the upstream's spiffe://<td>/tenant/<tenant>/service/<upstream>)")
	fl.StringVar(&f.tls.Key, "xds-tls-key", "", "sidecars: PEM private key of --xds-tls-cert")
	fl.StringVar(&f.tls.ServerSAN, "xds-server-san", "", "sidecars: SAN the xDS server's certificate must carry (default the host of --xds-address)")
	fl.IntVar(&f.opts.SidecarAdminPort, "sidecar-admin-port", 0, "loopback admin port of the sidecar Envoys (default 9901)")
	fl.StringToIntVar(&f.opts.AppPorts, "app-port", nil, "application port per upstream, UPSTREAM=PORT (default: the upstream's endpoint port)")
	fl.IntVar(&f.opts.SidecarInboundPort, "sidecar-inbound-port", tenants.DefaultSidecarInboundPort, "MeshConfig sidecarInboundPort: an endpoint on it is the sidecar, not the application")
	return c
}

func runK8sRender(ctx context.Context, g *globals, id string, f *k8sRenderFlags) error {
	t, err := renderSource(ctx, g, id, f.file)
	if err != nil {
		return err
	}
	if f.tls != (bootstrap.TLSFiles{}) {
		f.opts.XDSTLS = &f.tls
	}
	objs, err := k8s.Render(t, f.opts)
	if err != nil {
		return err
	}
	out, err := objs.YAML()
	if f.placement {
		out, err = objs.PlacementYAML()
		if err == nil && out == nil {
			return fmt.Errorf("tenant %s has no spec.isolation.dedicatedNodes: nothing to place", id)
		}
	}
	if err != nil {
		return err
	}
	if _, err := g.stdout.Write(out); err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	return nil
}

// renderSource reads tenant id from file (validated like `tenant apply`
// would) or from etcd.
func renderSource(ctx context.Context, g *globals, id, file string) (*tenants.Tenant, error) {
	if file != "" {
		docs, err := tenants.Load(file, g.stdin)
		decoded, err := decodeProblems(err)
		if err != nil {
			return nil, err
		}
		if err := withProblems(decoded, tenants.ValidateDocuments(docs, nil)); err != nil {
			return nil, err
		}
		for _, d := range docs {
			if t, ok := d.Object.(*tenants.Tenant); ok && t.ID() == id {
				return t, nil
			}
		}
		return nil, fmt.Errorf("%s holds no Tenant %q", file, id)
	}
	var t *tenants.Tenant
	err := g.withStore(ctx, func(ctx context.Context, st *store.Store) error {
		o, err := st.Get(ctx, tenants.KindTenant, id)
		if err != nil {
			return err
		}
		var ok bool
		if t, ok = o.(*tenants.Tenant); !ok {
			return fmt.Errorf("tenant %s: stored object is a %T", id, o)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tenant %q not found", id)
	}
	return t, err
}
