package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/internal/devca"
	"github.com/tenantmesh/tenantmesh/internal/identity"
)

// certsWarning goes to stderr with everything the certs commands do.
const certsWarning = "WARNING: DEV ONLY — a CA whose key is a local file; whoever holds it can mint any node's identity. Issue the same SANs from cert-manager or SPIRE in production."

func newCertsCmd(g *globals) *cobra.Command {
	c := groupCmd("certs", "DEV ONLY: a local CA for the control plane's and its clients' certificates",
		newCertsCACmd(g), newCertsServerCmd(g),
		newCertsNamedCmd(g, identity.KindEdge, "an Envoy edge", identity.Edge),
		newCertsSidecarCmd(g),
		newCertsNamedCmd(g, identity.KindGRPC, "a proxyless gRPC client", identity.GRPC),
		newCertsRatelimitCmd(g),
	)
	c.Long = certsWarning + `

Makes a CA and issues ECDSA P-256 certificates with one SPIFFE ID each:

  server     spiffe://<trust-domain>/controlplane + DNS/IP SANs  (server auth)
  edge       spiffe://<trust-domain>/edge/<name>                 (client auth)
  sidecar    spiffe://<trust-domain>/tenant/<t>/service/<s>      (client auth; also grpc-server)
  grpc       spiffe://<trust-domain>/grpc/<name>                 (client auth)
  ratelimit  spiffe://<trust-domain>/ratelimit/<name>            (client auth; with --dns/--ip also
                                                                 server auth, for the edges' gRPC calls)

Each goes into its own directory as tls.crt, tls.key and ca.crt — the layout
of a Kubernetes TLS Secret — so serve's and envoy bootstrap's flags point at
the same names whether the files come from here or from cert-manager.`
	return c
}

type certsFlags struct {
	ca, out  string
	validity time.Duration
}

func (f *certsFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.ca, "ca", "", "directory of the CA (certs ca --out)")
	c.Flags().StringVar(&f.out, "out", "", "directory to write tls.crt, tls.key and ca.crt into (replaced if present)")
	c.Flags().DurationVar(&f.validity, "validity", devca.DefaultLeafValidity, "how long the certificate is valid (cut to the CA's)")
}

// issue loads the CA, issues r (with the CA's trust domain) into --out.
func (f *certsFlags) issue(g *globals, r devca.Request, id func(td string) identity.ID) error {
	if f.ca == "" || f.out == "" {
		return usageError{errors.New("--ca and --out are required")}
	}
	fmt.Fprintln(g.stderr, certsWarning)
	ca, err := devca.Load(f.ca)
	if err != nil {
		return err
	}
	r.ID, r.Validity = id(ca.TrustDomain), f.validity
	if err := r.ID.Validate(); err != nil {
		return usageError{err}
	}
	l, err := ca.IssueTo(f.out, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s: %s valid until %s\n", f.out, r.ID, l.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func newCertsCACmd(g *globals) *cobra.Command {
	var out, td string
	var validity time.Duration
	c := &cobra.Command{
		Use:   "ca",
		Short: "DEV ONLY: create a CA (ca.crt, ca.key) in --out",
		Long: certsWarning + `

Creates a self-signed ECDSA P-256 root for the trust domain. An existing CA
key in --out is never replaced: every certificate issued from it would stop
verifying.`,
		Example: `  tenantmesh certs ca --out certs/ca`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(_ *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			fmt.Fprintln(g.stderr, certsWarning)
			if _, err := os.Stat(filepath.Join(out, devca.CAKeyFile)); err == nil {
				return fmt.Errorf("%s already holds a CA key; remove it to start over (every certificate it issued stops verifying)", out)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("CA directory: %w", err)
			}
			ca, err := devca.NewCA(td, validity)
			if err != nil {
				return usageError{err}
			}
			if err := ca.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: CA spiffe://%s valid until %s\n", out, td, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to create ca.crt and ca.key (mode 0600) in")
	c.Flags().StringVar(&td, "trust-domain", identity.DefaultTrustDomain, "SPIFFE trust domain of every certificate the CA issues")
	c.Flags().DurationVar(&validity, "validity", devca.DefaultCAValidity, "how long the CA is valid")
	return c
}

func newCertsServerCmd(g *globals) *cobra.Command {
	f := &certsFlags{}
	var dns []string
	var ips []net.IP
	c := &cobra.Command{
		Use:   "server",
		Short: "DEV ONLY: issue the control plane's server certificate",
		Long: certsWarning + `

The certificate carries spiffe://<trust-domain>/controlplane and the names and
addresses clients reach the control plane by: Envoy and envoyproxy/ratelimit
check the name they are given (--xds-server-san of envoy bootstrap, default
the host of --xds-address), grpc-go the host of its server_uri.`,
		Example: `  tenantmesh certs server --ca certs/ca --out certs/server --dns tenantmesh,localhost --ip 127.0.0.1`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(_ *cobra.Command, _ []string) error {
			if len(dns) == 0 && len(ips) == 0 {
				return usageError{errors.New("give the names (--dns) or addresses (--ip) clients reach the control plane by")}
			}
			return f.issue(g, devca.Request{DNSNames: dns, IPs: ips, Usage: devca.ServerAuth}, identity.ControlPlane)
		},
	}
	f.register(c)
	c.Flags().StringSliceVar(&dns, "dns", []string{"localhost"}, "DNS names of the control plane, comma-separated")
	c.Flags().IPSliceVar(&ips, "ip", []net.IP{net.ParseIP("127.0.0.1")}, "IP addresses of the control plane, comma-separated")
	return c
}

// newCertsNamedCmd is `certs edge|grpc|ratelimit NAME`.
func newCertsNamedCmd(g *globals, kind identity.Kind, what string, id func(td, name string) identity.ID) *cobra.Command {
	f := &certsFlags{}
	c := &cobra.Command{
		Use:     string(kind) + " NAME",
		Short:   "DEV ONLY: issue the client certificate of " + what,
		Long:    certsWarning + "\n\nThe certificate carries spiffe://<trust-domain>/" + string(kind) + "/NAME (client authentication only).",
		Example: "  tenantmesh certs " + string(kind) + " " + string(kind) + "-1 --ca certs/ca --out certs/" + string(kind) + "-1",
		Args:    exactArgs(1, "the "+string(kind)+"'s name"),
		RunE: func(_ *cobra.Command, args []string) error {
			return f.issue(g, devca.Request{Usage: devca.ClientAuth}, func(td string) identity.ID { return id(td, args[0]) })
		},
	}
	f.register(c)
	return c
}

// newCertsRatelimitCmd is `certs ratelimit NAME [--dns …] [--ip …]`:
// envoyproxy/ratelimit is a client of xDS and, over TLS
// (GRPC_SERVER_USE_TLS), a server of the edges' rate limit calls; the
// names it is reached by make its certificate serve as well.
func newCertsRatelimitCmd(g *globals) *cobra.Command {
	f := &certsFlags{}
	var dns []string
	var ips []net.IP
	c := &cobra.Command{
		Use:   "ratelimit NAME",
		Short: "DEV ONLY: issue the certificate of envoyproxy/ratelimit",
		Long: certsWarning + `

The certificate carries spiffe://<trust-domain>/ratelimit/NAME for ratelimit's
xDS client (client authentication). With --dns or --ip it also serves
(server authentication) under those names: give the same files to
GRPC_SERVER_TLS_CERT/KEY, and let the edges match the SPIFFE ID or a name
(MeshConfig spec.rateLimit.tls.san).`,
		Example: "  tenantmesh certs ratelimit ratelimit --ca certs/ca --out certs/ratelimit --dns ratelimit",
		Args:    exactArgs(1, "the ratelimit's name"),
		RunE: func(_ *cobra.Command, args []string) error {
			r := devca.Request{Usage: devca.ClientAuth}
			if len(dns) > 0 || len(ips) > 0 {
				r = devca.Request{DNSNames: dns, IPs: ips, Usage: devca.ServerAndClientAuth}
			}
			return f.issue(g, r, func(td string) identity.ID { return identity.Ratelimit(td, args[0]) })
		},
	}
	f.register(c)
	c.Flags().StringSliceVar(&dns, "dns", nil, "DNS names the edges reach ratelimit's gRPC port by (makes the certificate a server certificate too)")
	c.Flags().IPSliceVar(&ips, "ip", nil, "IP addresses the edges reach ratelimit's gRPC port by (as --dns)")
	return c
}

func newCertsSidecarCmd(g *globals) *cobra.Command {
	f := &certsFlags{}
	var tenant, service string
	c := &cobra.Command{
		Use:     "sidecar",
		Aliases: []string{"grpc-server"},
		Short:   "DEV ONLY: issue the client certificate of a tenant service's sidecar (or grpc-server)",
		Long: certsWarning + `

The certificate carries spiffe://<trust-domain>/tenant/<tenant>/service/<service>:
the one identity of that tenant upstream, whether an Envoy sidecar or a
grpc-go xDS server fronts it (client authentication only).`,
		Example: `  tenantmesh certs sidecar --tenant tenant-a --service executive --ca certs/ca --out certs/sidecar-tenant-a-executive`,
		Args:    exactArgs(0, "no arguments (--tenant and --service)"),
		RunE: func(_ *cobra.Command, _ []string) error {
			if tenant == "" || service == "" {
				return usageError{errors.New("--tenant and --service are required")}
			}
			return f.issue(g, devca.Request{Usage: devca.ClientAuth}, func(td string) identity.ID {
				return identity.Service(td, tenant, service)
			})
		},
	}
	f.register(c)
	c.Flags().StringVar(&tenant, "tenant", "", "tenant id")
	c.Flags().StringVar(&service, "service", "", "the tenant upstream (service) the sidecar fronts")
	return c
}
