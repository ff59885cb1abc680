package bootstrap

import (
	"strconv"
	"strings"
)

// EnvVar is one environment variable.
type EnvVar struct{ Name, Value string }

// Ratelimit is the environment that points envoyproxy/ratelimit at the
// xDS server (CONFIG_TYPE=GRPC_XDS_SOTW: it takes its limits over SotW
// ADS as ratelimit.config.ratelimit.v3.RateLimitConfig). Names and
// meanings are ratelimit's src/settings/settings.go:
//
//   - CONFIG_GRPC_XDS_SERVER_USE_TLS switches TLS on; without it the other
//     TLS variables are ignored;
//   - CONFIG_GRPC_XDS_SERVER_TLS_CACERT is added to the system roots
//     (utils.TlsConfigFromFiles with ServerCA), so a server name that a
//     public CA could certify is weaker than a private one;
//   - CONFIG_GRPC_XDS_CLIENT_TLS_CERT and _KEY are the client certificate,
//     loaded once at start (a rotation needs a restart);
//   - CONFIG_GRPC_XDS_SERVER_TLS_SAN replaces the host name checked
//     (tls.Config.ServerName, src/provider/xds_grpc_sotw_provider.go):
//     a DNS name or IP, never a URI.
//
// The result is ordered (fixed first, TLS last) so the same options give
// the same file.
func Ratelimit(o Options) ([]EnvVar, error) {
	if o.Role != RoleRatelimit {
		return nil, invalid("role %q: ratelimit environment is for role ratelimit", o.Role)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.SotW || o.Cluster != "" || o.AppAddress != "" {
		return nil, invalid("envoyproxy/ratelimit always speaks state of the world and sends no node cluster: --sotw, --cluster and --app-address do not apply")
	}
	if o.TLS != nil && strings.HasPrefix(o.TLS.ServerSAN, "spiffe://") {
		return nil, invalid("server SAN %q: envoyproxy/ratelimit checks a host name or IP, not a URI SAN", o.TLS.ServerSAN)
	}
	env := []EnvVar{
		{"CONFIG_TYPE", "GRPC_XDS_SOTW"},
		{"CONFIG_GRPC_XDS_SERVER_URL", o.XDSAddress},
		{"CONFIG_GRPC_XDS_NODE_ID", o.NodeID},
	}
	if t := o.TLS; t != nil {
		env = append(env,
			EnvVar{"CONFIG_GRPC_XDS_SERVER_USE_TLS", strconv.FormatBool(true)},
			EnvVar{"CONFIG_GRPC_XDS_SERVER_TLS_CACERT", t.CA})
		if t.Cert != "" {
			env = append(env, EnvVar{"CONFIG_GRPC_XDS_CLIENT_TLS_CERT", t.Cert}, EnvVar{"CONFIG_GRPC_XDS_CLIENT_TLS_KEY", t.Key})
		}
		if t.ServerSAN != "" {
			env = append(env, EnvVar{"CONFIG_GRPC_XDS_SERVER_TLS_SAN", t.ServerSAN})
		}
	}
	return env, nil
}

// EnvFile renders env as KEY=VALUE lines (docker compose env_file, a
// systemd EnvironmentFile, or `set -a; . FILE`).
func EnvFile(env []EnvVar) []byte {
	var b strings.Builder
	for _, e := range env {
		b.WriteString(e.Name + "=" + e.Value + "\n")
	}
	return []byte(b.String())
}
