package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // user error: invalid manifest, etcd down, not found
	exitUsage = 2 // wrong flags or arguments
)

// envEtcdEndpoints overrides the default of --etcd-endpoints.
const envEtcdEndpoints = "TENANTMESH_ETCD_ENDPOINTS"

// defaultClientEndpoint is where management commands look for etcd: the
// embedded etcd of `tenantmesh serve`.
const defaultClientEndpoint = "127.0.0.1:2379"

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// globals are the flags every command shares.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	etcdEndpoints []string
	etcdCA        string
	etcdCert      string
	etcdKey       string
	etcdUser      string
	etcdPassword  string
	prefix        string
	actor         string
	output        string
	audit         auditFlags
}

// newRootCmd builds the whole command tree around the given streams, so
// tests run commands in-process.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "tenantmesh",
		Short: "Envoy control plane for multi-tenant API platforms",
		Long: `tenantmesh keeps tenant definitions in etcd, turns them into Envoy xDS
configuration, and authorizes every request for its tenant.

Start the control plane with "tenantmesh serve" (embedded etcd by default),
then manage tenants with "tenantmesh tenant apply -f FILE".`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch g.output {
			case "table", "yaml", "json":
			case "csv":
				if cmd.Annotations[annotationCSV] == "" {
					return usageError{fmt.Errorf("-o csv: only `audit report` writes CSV; want table, yaml or json")}
				}
			default:
				return usageError{fmt.Errorf("-o %q: want table, yaml or json", g.output)}
			}
			return nil
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.etcdEndpoints, "etcd-endpoints", nil, "etcd endpoints, comma-separated (env "+envEtcdEndpoints+"; default "+defaultClientEndpoint+"; for serve: empty starts an embedded etcd)")
	pf.StringVar(&g.etcdCA, "etcd-ca", "", "PEM file of the CA that signed etcd's certificate (enables TLS)")
	pf.StringVar(&g.etcdCert, "etcd-cert", "", "PEM client certificate for etcd")
	pf.StringVar(&g.etcdKey, "etcd-key", "", "PEM private key of --etcd-cert")
	pf.StringVar(&g.etcdUser, "etcd-username", "", "etcd user name")
	pf.StringVar(&g.etcdPassword, "etcd-password", "", "etcd password")
	pf.StringVar(&g.prefix, "prefix", store.DefaultPrefix, "etcd key prefix")
	pf.StringVar(&g.actor, "actor", defaultActor(), "a label for who is making the change, recorded in the audit trail beside the authenticated etcd identity")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, yaml or json")
	g.audit.register(pf)

	root.AddCommand(
		newServeCmd(g),
		newTenantCmd(g),
		newTierCmd(g),
		newMeshConfigCmd(g),
		newAPIKeyCmd(g),
		newAuditCmd(g),
		newVersionCmd(g),
	)
	root.AddCommand(moreCommands(g)...)
	return root
}

// defaultActor is the OS user running the CLI.
func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// endpoints returns the etcd endpoints a management command talks to:
// the flag, else the environment, else the embedded etcd's address.
func (g *globals) endpoints() []string {
	if len(g.etcdEndpoints) > 0 {
		return g.etcdEndpoints
	}
	if env := os.Getenv(envEtcdEndpoints); env != "" {
		return strings.Split(env, ",")
	}
	return []string{defaultClientEndpoint}
}

// groupCmd is a command that only holds subcommands: without one it
// prints help, with an unknown one it is a usage error.
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
		},
	}
	c.AddCommand(subs...)
	return c
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s (got %d arguments)", cmd.CommandPath(), names, len(args))}
		}
		return nil
	}
}

// execute runs the command with args and returns the exit code, printing
// errors kubectl-style.
func execute(root *cobra.Command, args []string) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		fmt.Fprintf(root.ErrOrStderr(), "error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(root.ErrOrStderr(), "error: %v\n", err)
	return exitError
}
