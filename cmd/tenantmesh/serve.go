package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/xds"
)

func newServeCmd(g *globals) *cobra.Command {
	var cfg controlplane.Config
	var logLevel, logFormat string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane (embedded etcd unless --etcd-endpoints is given)",
		Long: `Run the control plane: the store watch, the xDS server, the ext_authz server
and two HTTP admin listeners:
  --admin-listen          public: /.well-known/jwks.json (sidecars fetch it),
                          /healthz, /readyz; HTTPS with --admin-tls-cert/-key
                          (reloaded when the files change)
  --admin-private-listen  private, loopback only unless
                          --admin-private-allow-remote: /metrics,
                          /debug/catalog, /debug/xds, /debug/pprof/

Without --etcd-endpoints (or TENANTMESH_ETCD_ENDPOINTS) an embedded etcd
keeps its data in --data-dir. --preload DIR applies the manifests in DIR
when the store holds no tenants yet.

The xDS and ext_authz servers serve plaintext only on loopback addresses
(the defaults). On any other address they need TLS: --xds-tls-cert and
--xds-tls-key (--authz-tls-* for ext_authz), and with --xds-tls-client-ca
clients must present a certificate of that CA (mutual TLS), whose SPIFFE
ID (of --xds-trust-domain) then decides each node's role, tenant and
service: node metadata that disagrees is refused. The files are
re-read when they change; open streams keep their connection. The log says
at start which mode each server runs in. ` + "`tenantmesh certs`" + ` makes
development certificates.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(g.stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			// Unlike management commands, serve has no default endpoint:
			// none means "run etcd embedded".
			cfg.EtcdEndpoints = g.etcdEndpoints
			if len(cfg.EtcdEndpoints) == 0 {
				if env := os.Getenv(envEtcdEndpoints); env != "" {
					cfg.EtcdEndpoints = strings.Split(env, ",")
				}
			}
			cfg.EtcdCA, cfg.EtcdCert, cfg.EtcdKey = g.etcdCA, g.etcdCert, g.etcdKey
			cfg.EtcdUsername, cfg.EtcdPassword = g.etcdUser, g.etcdPassword
			cfg.Prefix = g.prefix
			cfg.AuditKeyFile = g.audit.keyFile
			if cfg.AuditKeyFile == "" {
				cfg.AuditKeyFile = os.Getenv(envAuditKeyFile)
			}
			cfg.AuditPublicKeys = g.audit.publicKeys
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return controlplane.Run(ctx, cfg)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", controlplane.DefaultDataDir, "data directory of the embedded etcd")
	f.StringVar(&cfg.EmbeddedEtcdListen, "embedded-etcd-listen", controlplane.DefaultEmbeddedEtcdListen, "client address of the embedded etcd")
	f.StringVar(&cfg.EmbeddedEtcdPeerListen, "embedded-etcd-peer-listen", controlplane.DefaultEmbeddedEtcdPeerListen, "peer address of the embedded etcd")
	f.StringVar(&cfg.XDSListen, "xds-listen", controlplane.DefaultXDSListen, "address of the xDS (ADS) gRPC server")
	f.StringVar(&cfg.AuthzListen, "authz-listen", controlplane.DefaultAuthzListen, "address of the ext_authz gRPC server")
	tlsFlags(f, "xds", "xDS", &cfg.XDSTLS)
	tlsFlags(f, "authz", "ext_authz", &cfg.AuthzTLS)
	f.BoolVar(&cfg.AuthzInsecurePlaintext, "authz-insecure-plaintext", false, "escape hatch: serve ext_authz without TLS on a non-loopback --authz-listen (for Envoys without MeshConfig spec.authz.tls)")
	f.StringVar(&cfg.XDSTrustDomain, "xds-trust-domain", identity.DefaultTrustDomain, "with --xds-tls-client-ca: the trust domain of the SPIFFE IDs xDS clients must present; the ID decides a node's role, tenant and service")
	f.IntVar(&cfg.XDSMaxStreamsPerIdentity, "xds-max-streams-per-identity", xds.DefaultMaxStreamsPerIdentity, "with --xds-tls-client-ca: open xDS streams one client identity may have (replicas sharing a certificate count together)")
	f.IntVar(&cfg.XDSMaxGroupsPerIdentity, "xds-max-groups-per-identity", xds.DefaultMaxGroupsPerIdentity, "with --xds-tls-client-ca: distinct node groups one client identity's streams may be in")
	f.DurationVar(&cfg.TLSReloadInterval, "tls-reload-interval", tlsconfig.DefaultReloadInterval, "how often the TLS certificate, key and client CA files are checked for changes")
	f.StringVar(&cfg.AdminListen, "admin-listen", controlplane.DefaultAdminListen, "address of the public admin listener (/.well-known/jwks.json, /healthz, /readyz)")
	f.StringVar(&cfg.AdminTLSCert, "admin-tls-cert", "", "PEM certificate of the public admin listener (serves HTTPS; reloaded when the file changes)")
	f.StringVar(&cfg.AdminTLSKey, "admin-tls-key", "", "PEM private key of --admin-tls-cert")
	f.StringVar(&cfg.AdminPrivateListen, "admin-private-listen", controlplane.DefaultAdminPrivateListen, "address of the private admin listener (/metrics, /debug/*); loopback only unless --admin-private-allow-remote")
	f.BoolVar(&cfg.AdminPrivateAllowRemote, "admin-private-allow-remote", false, "let --admin-private-listen be a non-loopback address (it has no authentication: restrict who reaches it)")
	f.BoolVar(&cfg.DisableXDS, "disable-xds", false, "do not run the xDS server")
	f.BoolVar(&cfg.DisableAuthz, "disable-authz", false, "do not run the ext_authz server")
	f.BoolVar(&cfg.MetricsTenantLabels, "metrics-tenant-labels", false, "label per-tenant metrics with tenant_id (one series per tenant)")
	f.StringVar(&cfg.ContextKeyFile, "context-key-file", "", "PEM Ed25519 key signing x-tenant-context, created when absent; replicas must share it (default <data-dir>/context-signing-key.pem)")
	f.DurationVar(&cfg.AuditCompactInterval, "audit-compact-interval", time.Hour, "how often tenants' spec.audit.retention is applied (old audit records become signed summaries); 0 never")
	f.StringVar(&cfg.Preload, "preload", "", "directory of manifests to apply when the store holds no tenants yet")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", controlplane.DefaultShutdownTimeout, "how long to drain on SIGTERM")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return c
}

// tlsFlags are --NAME-tls-cert, --NAME-tls-key and --NAME-tls-client-ca.
func tlsFlags(f *pflag.FlagSet, name, what string, files *tlsconfig.Files) {
	f.StringVar(&files.Cert, name+"-tls-cert", "", "PEM certificate (chain) of the "+what+" server; with --"+name+"-tls-key serves TLS")
	f.StringVar(&files.Key, name+"-tls-key", "", "PEM private key of --"+name+"-tls-cert")
	f.StringVar(&files.ClientCA, name+"-tls-client-ca", "", "PEM CA bundle: "+what+" clients must present a certificate it signed (mutual TLS)")
}
