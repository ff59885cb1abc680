package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// compactTimeout bounds `audit compact`, which may write many summaries.
const compactTimeout = 30 * time.Minute

func newAuditCmd(g *globals) *cobra.Command {
	return groupCmd("audit", "Read, verify, export, report on and compact the audit trail",
		newAuditListCmd(g), newAuditVerifyCmd(g), newAuditReportCmd(g), newAuditExportCmd(g),
		newAuditCompactCmd(g), newAuditPublicKeyCmd(g))
}

func newAuditListCmd(g *globals) *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "list [--tenant T]",
		Short: "List the audit trail, oldest first (unverified: see audit verify)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				recs, err := st.AuditList(ctx, tenant)
				if err != nil {
					return err
				}
				if ok, err := g.printStructured(recs); ok {
					return err
				}
				rows := make([][]string, len(recs))
				for i, r := range recs {
					rows[i] = []string{strconv.FormatUint(r.Seq, 10), r.Time.Local().Format(time.RFC3339), actorColumn(r), orNone(r.Label), r.Action, auditObject(r), short(r.Hash)}
				}
				return printTable(g.stdout, []string{"SEQ", "TIME", "ACTOR", "LABEL", "ACTION", "OBJECT", "HASH"}, rows)
			})
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "only records about this tenant and its API keys")
	return c
}

// auditObject names what a record is about.
func auditObject(r store.AuditRecord) string {
	obj := noun(r.Kind) + "/" + r.Name
	switch {
	case r.Summary != nil:
		obj = fmt.Sprintf("%d records of tenant %s (seq %d..%d, older than %s)", r.Summary.Count, r.Summary.Tenant, r.Summary.FirstSeq, r.Summary.LastSeq, r.Summary.Retention)
	case r.Kind == store.KindAPIKey:
		obj += " (tenant " + r.Tenant + ")"
	}
	return obj
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	var checkpointFile string
	c := &cobra.Command{
		Use:   "verify [--checkpoint FILE]",
		Short: "Check the signatures and the chain of the audit trail; names the first edited or missing record",
		Long: `Check every record's hash and Ed25519 signature, the chain from the first
record to audit-head, and the retention summaries standing in for removed
records. An empty trail in a store that holds objects fails.

Verifying needs the public key only: --audit-public-key FILE (from
` + "`tenantmesh audit public-key`" + `), or the key file itself.

--checkpoint FILE reads the last checkpoint of an ` + "`audit export`" + ` output and
fails unless the trail still holds the checkpointed record at its seq, so
deleted records at the end (with audit-head moved back) or a deleted trail
are detected.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cp *store.Checkpoint
			if checkpointFile != "" {
				var err error
				if cp, err = readCheckpointFile(checkpointFile); err != nil {
					return err
				}
			}
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				res, err := st.AuditVerifyWith(ctx, store.VerifyOptions{Checkpoint: cp})
				if err != nil {
					return fmt.Errorf("audit trail verification failed: %w", err)
				}
				if ok, err := g.printStructured(map[string]any{"verified": true, "result": res}); ok {
					return err
				}
				fmt.Fprintf(g.stdout, "audit trail verified: %d records, hash chain intact and signed (head seq %d, keys %s)\n",
					res.Records, res.HeadSeq, strings.Join(res.KeyIDs, ", "))
				if res.Compacted > 0 {
					fmt.Fprintf(g.stdout, "%d older records were compacted by retention into signed summaries\n", res.Compacted)
				}
				if res.Unsigned > 0 {
					fmt.Fprintf(g.stdout, "%d records from before records were signed, bound by the signed ones after them\n", res.Unsigned)
				}
				if cp != nil {
					fmt.Fprintf(g.stdout, "checkpoint of %s (seq %d) is part of the trail\n", cp.Time.Local().Format(time.RFC3339), cp.Seq)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&checkpointFile, "checkpoint", "", "output of `audit export` whose last checkpoint the trail must contain")
	return c
}

func readCheckpointFile(path string) (*store.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	cp, rerr := store.ReadLastCheckpoint(f)
	if cerr := f.Close(); rerr == nil && cerr != nil {
		rerr = cerr
	}
	if rerr != nil {
		return nil, fmt.Errorf("--checkpoint %s: %w", path, rerr)
	}
	return cp, nil
}

func newAuditCompactCmd(g *globals) *cobra.Command {
	var dryRun bool
	c := &cobra.Command{
		Use:   "compact [--dry-run]",
		Short: "Apply the tenants' spec.audit.retention now: old records become signed summaries",
		Long: `Replace every tenant's audit records older than its spec.audit.retention by
signed summary records (count, first and last seq, a digest of the removed
records and their chain links), so the trail still verifies. serve does the
same every --audit-compact-interval. A trail that does not verify is not
compacted. Needs the audit key.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStoreTimeout(cmd.Context(), compactTimeout, func(ctx context.Context, st *store.Store) error {
				done, err := st.AuditCompact(ctx, g.actor, dryRun)
				if err != nil {
					return err
				}
				if ok, err := g.printStructured(done); ok {
					return err
				}
				if len(done) == 0 {
					fmt.Fprintln(g.stdout, "nothing to compact")
					return nil
				}
				rows := make([][]string, len(done))
				for i, d := range done {
					rows[i] = []string{d.Tenant, strconv.Itoa(d.Count), fmt.Sprintf("%d..%d", d.FirstSeq, d.LastSeq), d.Before.Local().Format(time.RFC3339)}
				}
				if dryRun {
					fmt.Fprintln(g.stdout, "dry run: these summaries would be written")
				}
				return printTable(g.stdout, []string{"TENANT", "RECORDS", "SEQ", "OLDER THAN"}, rows)
			})
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be compacted without writing")
	return c
}

func newAuditPublicKeyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "public-key",
		Short: "Print the public key of --audit-key-file (PEM) for verifiers, who need nothing else",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			path, err := g.audit.file()
			if err != nil {
				return err
			}
			if path == "" {
				return auditKeyHint(fmt.Errorf("%w given", store.ErrNoAuditKey))
			}
			k, err := store.LoadAuditKey(path)
			if err != nil {
				return err
			}
			pemBytes, err := k.PublicPEM()
			if err != nil {
				return err
			}
			if _, err := g.stdout.Write(pemBytes); err != nil {
				return fmt.Errorf("write public key: %w", err)
			}
			return nil
		},
	}
}

// parseReportTime accepts RFC 3339, a date (midnight UTC), or a duration
// meaning that long before now.
func parseReportTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError{errors.New(flag + " " + strconv.Quote(s) + ": want RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration before now (720h)")}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
