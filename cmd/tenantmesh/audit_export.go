package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newAuditExportCmd(g *globals) *cobra.Command {
	var out string
	var follow, checkpointsOnly bool
	var interval time.Duration
	c := &cobra.Command{
		Use:   "export [--follow] [--out FILE] [--checkpoints-only]",
		Short: "Write the audit records and signed checkpoints of the head outside etcd (JSON lines)",
		Long: `Verify the trail, then write its records and a signed checkpoint of its head,
one JSON object per line ({"record":…} or {"checkpoint":…}), to standard
output or appended to --out FILE. With --follow, keep writing new records
and a checkpoint after every change and every --interval; stop with an error
(exit 1) as soon as the trail fails verification or loses records already
exported — that is the alarm. With --out, an export resumes after the last
checkpoint in FILE and first checks that the trail still holds it.

` + "`audit verify --checkpoint FILE`" + ` checks the trail against the last checkpoint.
Keep the file where etcd writers cannot write, or pipe standard output to a
log collector (| logger -t tenantmesh-audit for syslog). Needs the audit key:
checkpoints are signed with it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w, resume, closeOut, err := g.exportTarget(out)
			if err != nil {
				return err
			}
			timeout := commandTimeout
			if follow {
				timeout = 0
			}
			err = g.withStoreTimeout(ctx, timeout, func(ctx context.Context, st *store.Store) error {
				return st.AuditExport(ctx, store.ExportOptions{Resume: resume, Follow: follow, Interval: interval}, func(l store.ExportLine) error {
					if checkpointsOnly && l.Checkpoint == nil {
						return nil
					}
					return w.write(l)
				})
			})
			return errors.Join(err, closeOut())
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "", "append to this file (created 0600) instead of standard output, resuming after its last checkpoint")
	f.BoolVar(&follow, "follow", false, "keep exporting new records and checkpoints until interrupted")
	f.BoolVar(&checkpointsOnly, "checkpoints-only", false, "write checkpoints only, not the records")
	f.DurationVar(&interval, "interval", time.Minute, "with --follow, write a checkpoint at least this often")
	return c
}

// lineWriter writes export lines; to a file it syncs after each
// checkpoint, so a checkpoint reported is one on disk.
type lineWriter struct {
	w    io.Writer
	file *os.File
}

func (lw lineWriter) write(l store.ExportLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode export line: %w", err)
	}
	if _, err := lw.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	if lw.file != nil && l.Checkpoint != nil {
		if err := lw.file.Sync(); err != nil {
			return fmt.Errorf("sync export file: %w", err)
		}
	}
	return nil
}

// exportTarget opens where export writes and reads the checkpoint to
// resume from.
func (g *globals) exportTarget(out string) (lineWriter, *store.Checkpoint, func() error, error) {
	if out == "" {
		return lineWriter{w: g.stdout}, nil, func() error { return nil }, nil
	}
	var resume *store.Checkpoint
	if st, err := os.Stat(out); err == nil && st.Size() > 0 {
		if resume, err = readCheckpointFile(out); err != nil {
			return lineWriter{}, nil, nil, fmt.Errorf("--out %s holds no checkpoint to resume from: %w", out, err)
		}
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return lineWriter{}, nil, nil, fmt.Errorf("--out: %w", err)
	}
	return lineWriter{w: f, file: f}, resume, f.Close, nil
}
