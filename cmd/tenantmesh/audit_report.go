package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newAuditReportCmd(g *globals) *cobra.Command {
	var tenant, since, until string
	c := &cobra.Command{
		Use:   "report --tenant T [--since TIME] [--until TIME] [-o json|csv|yaml|table]",
		Short: "Every change to a tenant and its API keys in a time range, with actors, from a verified trail",
		Long: `Verify the whole trail, then list the records about one tenant: its
manifest's changes, its API keys' and the retention summaries of them, each
with its authenticated actor and label. --since and --until take RFC 3339,
a date (2026-01-02, midnight UTC) or a duration before now (720h); since is
inclusive, until exclusive. -o csv writes one row per record with a header.`,
		Example: `  tenantmesh audit report --tenant tenant-a --since 2026-01-01 --until 2026-04-01 -o csv > q1.csv
  tenantmesh audit report --tenant tenant-a --since 720h -o json`,
		Annotations: map[string]string{annotationCSV: "yes"},
		Args:        exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" {
				return usageError{fmt.Errorf("--tenant is required")}
			}
			now := time.Now()
			s, err := parseReportTime("--since", since, now)
			if err != nil {
				return err
			}
			u, err := parseReportTime("--until", until, now)
			if err != nil {
				return err
			}
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				rep, err := st.AuditReport(ctx, store.ReportOptions{Tenant: tenant, Since: s, Until: u})
				if err != nil {
					return err
				}
				if g.output == "csv" {
					return writeReportCSV(g, rep)
				}
				if ok, err := g.printStructured(rep); ok {
					return err
				}
				rows := make([][]string, len(rep.Records))
				for i, r := range rep.Records {
					rows[i] = []string{strconv.FormatUint(r.Seq, 10), r.Time.Local().Format(time.RFC3339), actorColumn(r), orNone(r.Label), r.Action, auditObject(r)}
				}
				return printTable(g.stdout, []string{"SEQ", "TIME", "ACTOR", "LABEL", "ACTION", "OBJECT"}, rows)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&tenant, "tenant", "", "the tenant to report on (required)")
	f.StringVar(&since, "since", "", "only records at or after this time")
	f.StringVar(&until, "until", "", "only records before this time")
	return c
}

// reportCSVHeader are the columns of `audit report -o csv`.
var reportCSVHeader = []string{"seq", "time", "actor", "label", "action", "kind", "name", "tenant",
	"before_digest", "after_digest", "key_id", "hash",
	"summary_count", "summary_first_seq", "summary_last_seq", "summary_digest"}

func writeReportCSV(g *globals, rep *store.AuditReport) error {
	w := csv.NewWriter(g.stdout)
	if err := w.Write(reportCSVHeader); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	for _, r := range rep.Records {
		row := []string{strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Actor, r.Label, r.Action, string(r.Kind), r.Name, r.Tenant,
			r.BeforeDigest, r.AfterDigest, r.KeyID, r.Hash, "", "", "", ""}
		if s := r.Summary; s != nil {
			row[12], row[13], row[14], row[15] = strconv.Itoa(s.Count), strconv.FormatUint(s.FirstSeq, 10), strconv.FormatUint(s.LastSeq, 10), s.Digest
		}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := w.Write(row); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// csvSafe keeps a spreadsheet from running a cell as a formula: labels
// are whatever the writer typed (--actor "=HYPERLINK(…)"). OWASP's CSV
// injection advice: prefix such cells with a quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
