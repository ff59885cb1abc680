package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tenantmesh/tenantmesh/controlplane"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// envAuditKeyFile overrides the default of --audit-key-file.
const envAuditKeyFile = "TENANTMESH_AUDIT_KEY_FILE"

// annotationCSV marks the commands that accept -o csv.
const annotationCSV = "tenantmesh/csv"

// auditFlags say where the audit keys are.
type auditFlags struct {
	keyFile    string
	publicKeys []string
}

func (a *auditFlags) register(pf *pflag.FlagSet) {
	pf.StringVar(&a.keyFile, "audit-key-file", "", "PEM Ed25519 key that signs audit records; writes need it (env "+envAuditKeyFile+
		"; default "+defaultAuditKeyFile()+" when that file exists; for serve: "+store.AuditKeyFileName+" beside --context-key-file, created when absent)")
	pf.StringArrayVar(&a.publicKeys, "audit-public-key", nil, "PEM file of further public keys audit verification accepts (keys rotated out); repeatable")
}

// defaultAuditKeyFile is where `serve` with its default --data-dir keeps
// the key, so the CLI run beside it (make run) finds it.
func defaultAuditKeyFile() string {
	return filepath.Join(controlplane.DefaultDataDir, store.AuditKeyFileName)
}

// file returns the key file to use: the flag, else the environment, else
// the default when it exists; "" when there is none.
func (a *auditFlags) file() (string, error) {
	if a.keyFile != "" {
		return a.keyFile, nil
	}
	if env := os.Getenv(envAuditKeyFile); env != "" {
		return env, nil
	}
	def := defaultAuditKeyFile()
	switch _, err := os.Stat(def); {
	case err == nil:
		return def, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	default:
		return "", fmt.Errorf("audit key %s: %w", def, err)
	}
}

// options loads the keys and resolves the authenticated identity of cli
// for the store. The CLI never creates a key: one it made up would sign
// records no replica's verifier accepts.
func (a *auditFlags) options(ctx context.Context, cli *clientv3.Client, cfg store.ClientConfig) (store.AuditOptions, error) {
	var o store.AuditOptions
	path, err := a.file()
	if err != nil {
		return o, err
	}
	if path != "" {
		if o.Key, err = store.LoadAuditKey(path); err != nil {
			return o, fmt.Errorf("--audit-key-file: %w", err)
		}
	}
	o.Keyring = store.AuditKeyring{}
	for _, p := range a.publicKeys {
		if err := o.Keyring.LoadAuditPublicKeys(p); err != nil {
			return o, fmt.Errorf("--audit-public-key: %w", err)
		}
	}
	if o.Identity, err = store.ResolveIdentity(ctx, cli, cfg); err != nil {
		return o, err
	}
	return o, nil
}

// auditKeyHint explains a write refused for want of the audit key.
func auditKeyHint(err error) error {
	if !errors.Is(err, store.ErrNoAuditKey) {
		return err
	}
	return fmt.Errorf("%w.\nGive the key `tenantmesh serve` signs with: --audit-key-file FILE or %s "+
		"(serve keeps it beside its --context-key-file, by default <data-dir>/%s; replicas and the CLI share one key file)", err, envAuditKeyFile, store.AuditKeyFileName)
}

// actorColumn shows a record's authenticated actor.
func actorColumn(r store.AuditRecord) string {
	if r.Actor == "" {
		return "(unauthenticated)"
	}
	return r.Actor
}
