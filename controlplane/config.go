// Package controlplane composes `tenantmesh serve`: etcd (embedded or
// external), the store and its watch, the HTTP admin server, and the parts
// (xDS, ext_authz) that consume Catalogs.
package controlplane

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tenantmesh/tenantmesh/internal/identity"
	"github.com/tenantmesh/tenantmesh/internal/tlsconfig"
	"github.com/tenantmesh/tenantmesh/tenants/store"
	"github.com/tenantmesh/tenantmesh/xds"
)

// Defaults of `serve` (docs/architecture.md#process-ports-and-flags).
const (
	DefaultDataDir                = "./tenantmesh-data"
	DefaultEmbeddedEtcdListen     = "127.0.0.1:2379"
	DefaultEmbeddedEtcdPeerListen = "127.0.0.1:2380"
	DefaultXDSListen              = "127.0.0.1:18000"
	DefaultAuthzListen            = "127.0.0.1:9191"
	DefaultAdminListen            = "127.0.0.1:9102"
	DefaultAdminPrivateListen     = "127.0.0.1:9103"
	DefaultShutdownTimeout        = 15 * time.Second
)

// Config is everything `tenantmesh serve` can be told.
type Config struct {
	// EtcdEndpoints of an external cluster; empty starts an embedded etcd.
	EtcdEndpoints []string
	// DataDir holds the embedded etcd's data.
	DataDir string
	// EmbeddedEtcdListen and EmbeddedEtcdPeerListen are host:port of the
	// embedded etcd's client and peer listeners.
	EmbeddedEtcdListen     string
	EmbeddedEtcdPeerListen string
	// EtcdCA, EtcdCert, EtcdKey: PEM files for TLS to an external etcd.
	EtcdCA, EtcdCert, EtcdKey string
	EtcdUsername              string
	EtcdPassword              string
	// Prefix of every etcd key (default store.DefaultPrefix).
	Prefix string

	// XDSListen is the address of the ADS server; AuthzListen of the
	// ext_authz gRPC server.
	XDSListen   string
	AuthzListen string
	// AdminListen is the public admin listener: /.well-known/jwks.json
	// (which every sidecar fetches), /healthz and /readyz, nothing else.
	// It serves TLS when AdminTLSCert and AdminTLSKey are set.
	AdminListen string
	// XDSTLS and AuthzTLS are the PEM files of the xDS and ext_authz
	// servers: certificate, key, and a client CA for mutual TLS (clients
	// must then present a certificate of that CA). Files are re-read when
	// they change (TLSReloadInterval). Empty means plaintext, which only a
	// loopback listen address may serve.
	XDSTLS   tlsconfig.Files
	AuthzTLS tlsconfig.Files
	// AuthzInsecurePlaintext lets ext_authz serve plaintext on a
	// non-loopback address: an escape hatch for Envoys that cannot be given
	// MeshConfig spec.authz.tls yet (a migration, Envoys configured by
	// something else). Whoever reaches the port can have credentials
	// checked and read what a CheckResponse says about them.
	AuthzInsecurePlaintext bool
	// TLSReloadInterval is how often certificate files are checked for
	// changes (default tlsconfig.DefaultReloadInterval).
	TLSReloadInterval time.Duration
	// XDSTrustDomain is the trust domain of the SPIFFE IDs xDS clients
	// must present under mutual TLS, where the ID, not the node metadata,
	// decides a node's role, tenant and service (default
	// identity.DefaultTrustDomain, what `tenantmesh certs` issues).
	XDSTrustDomain string
	// XDSMaxStreamsPerIdentity and XDSMaxGroupsPerIdentity bound, under
	// mutual TLS, the open xDS streams of one client identity and the node
	// groups they are in (defaults xds.DefaultMaxStreamsPerIdentity and
	// xds.DefaultMaxGroupsPerIdentity).
	XDSMaxStreamsPerIdentity int
	XDSMaxGroupsPerIdentity  int
	// AdminTLSCert and AdminTLSKey are PEM files of the public admin
	// listener's certificate, read again when they change.
	AdminTLSCert, AdminTLSKey string
	// AdminPrivateListen is the private admin listener: /metrics and
	// /debug/* (catalog, xds, pprof). It must be a loopback address unless
	// AdminPrivateAllowRemote is set: what it shows (every tenant's hosts,
	// routes and rejections, profiles) is for operators only.
	AdminPrivateListen      string
	AdminPrivateAllowRemote bool
	// DisableXDS and DisableAuthz switch those parts off, so they can be
	// scaled separately.
	DisableXDS   bool
	DisableAuthz bool
	// MetricsTenantLabels adds a tenant_id label to per-tenant metrics;
	// off by default because it multiplies series by the tenant count.
	MetricsTenantLabels bool
	// ContextKeyFile holds the Ed25519 key that signs x-tenant-context
	// (PEM, created when absent; default <DataDir>/context-signing-key.pem).
	// Replicas must share it, or sidecars reject tokens of the others.
	ContextKeyFile string
	// AuditKeyFile holds the Ed25519 key that signs audit records (PEM,
	// created when absent; default beside ContextKeyFile). Replicas and
	// the CLI must share it: records signed with another key fail
	// `audit verify`. It must not be stored in etcd.
	AuditKeyFile string
	// AuditPublicKeys are PEM files of further keys the trail may be
	// signed with (keys rotated out); compaction verifies with them.
	AuditPublicKeys []string
	// AuditCompactInterval is how often tenants' spec.audit.retention is
	// applied (store.Store.AuditCompact); 0 never.
	AuditCompactInterval time.Duration

	// Preload is a directory of manifests applied when the store holds no
	// tenants yet (first start).
	Preload string

	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful drain on shutdown.
	ShutdownTimeout time.Duration

	// ExtraParts are built after the built-in parts; tests and embedders
	// use them to run additional components under the same lifecycle.
	ExtraParts []PartFactory
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.DataDir, DefaultDataDir)
	set(&c.EmbeddedEtcdListen, DefaultEmbeddedEtcdListen)
	set(&c.EmbeddedEtcdPeerListen, DefaultEmbeddedEtcdPeerListen)
	set(&c.Prefix, store.DefaultPrefix)
	set(&c.XDSListen, DefaultXDSListen)
	set(&c.AuthzListen, DefaultAuthzListen)
	set(&c.AdminListen, DefaultAdminListen)
	set(&c.AdminPrivateListen, DefaultAdminPrivateListen)
	set(&c.ContextKeyFile, filepath.Join(c.DataDir, "context-signing-key.pem"))
	set(&c.AuditKeyFile, filepath.Join(filepath.Dir(c.ContextKeyFile), store.AuditKeyFileName))
	set(&c.XDSTrustDomain, identity.DefaultTrustDomain)
	if c.XDSMaxStreamsPerIdentity == 0 {
		c.XDSMaxStreamsPerIdentity = xds.DefaultMaxStreamsPerIdentity
	}
	if c.XDSMaxGroupsPerIdentity == 0 {
		c.XDSMaxGroupsPerIdentity = xds.DefaultMaxGroupsPerIdentity
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.TLSReloadInterval == 0 {
		c.TLSReloadInterval = tlsconfig.DefaultReloadInterval
	}
	return c
}

// clientConfig is the etcd client configuration of an external cluster.
func (c Config) clientConfig() store.ClientConfig {
	return store.ClientConfig{
		Endpoints: c.EtcdEndpoints,
		CA:        c.EtcdCA, Cert: c.EtcdCert, Key: c.EtcdKey,
		Username: c.EtcdUsername, Password: c.EtcdPassword,
	}
}

func (c Config) validate() error {
	if len(c.EtcdEndpoints) == 0 && (c.EtcdCA != "" || c.EtcdCert != "" || c.EtcdUsername != "") {
		return fmt.Errorf("etcd TLS and credentials apply to --etcd-endpoints; the embedded etcd uses neither")
	}
	if err := identity.ControlPlane(c.XDSTrustDomain).Validate(); err != nil {
		return fmt.Errorf("--xds-trust-domain: %w", err)
	}
	if c.XDSMaxStreamsPerIdentity < 0 || c.XDSMaxGroupsPerIdentity < 0 {
		return fmt.Errorf("--xds-max-streams-per-identity and --xds-max-groups-per-identity must be positive")
	}
	for _, s := range []struct {
		name, listen string
		files        tlsconfig.Files
		off, plainOK bool
		hint         string
	}{
		{"xds", c.XDSListen, c.XDSTLS, c.DisableXDS, false, ""},
		{"authz", c.AuthzListen, c.AuthzTLS, c.DisableAuthz, c.AuthzInsecurePlaintext,
			"; the edges then need MeshConfig spec.authz.tls. --authz-insecure-plaintext accepts the risk for Envoys that cannot call ext_authz over TLS"},
	} {
		if err := s.files.Validate("--" + s.name + "-tls"); err != nil {
			return err
		}
		if s.off || s.plainOK || s.files.Mode() != tlsconfig.ModePlaintext || tlsconfig.IsLoopback(s.listen) {
			continue
		}
		// Anything that reaches a plaintext xDS port can claim to be any
		// node and read or steer its configuration, and a plaintext
		// ext_authz port answers anyone's credential checks; only the
		// local host may be trusted with that.
		return fmt.Errorf("--%s-listen %s is not a loopback address, and plaintext is only served on loopback: "+
			"set --%[1]s-tls-cert and --%[1]s-tls-key (and --%[1]s-tls-client-ca for mutual TLS; "+
			"`tenantmesh certs` makes development certificates), or listen on 127.0.0.1%[3]s", s.name, s.listen, s.hint)
	}
	if (c.AdminTLSCert == "") != (c.AdminTLSKey == "") {
		return fmt.Errorf("--admin-tls-cert and --admin-tls-key go together")
	}
	if !c.AdminPrivateAllowRemote {
		if err := literalLoopback(c.AdminPrivateListen); err != nil {
			return fmt.Errorf("--admin-private-listen %s: %w", c.AdminPrivateListen, err)
		}
	}
	return nil
}
