package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newTenantCmd(g *globals) *cobra.Command {
	return groupCmd("tenant", "Manage tenants",
		newApplyCmd(g, nil, "Create or update tenants (and tiers, shared services and the MeshConfig in the same files), any number at once"),
		newGetCmd(g, tenants.KindTenant, g.tenantTable),
		newListCmd(g, tenants.KindTenant, g.tenantTable),
		newDeleteCmd(g, tenants.KindTenant, " with its API keys and status"),
		newValidateCmd(g),
		newDiffCmd(g),
	)
}

// tenantTable prints tenants with the control plane's verdict on each;
// for a single tenant it also prints the status message.
func (g *globals) tenantTable(ctx context.Context, st *store.Store, objs []tenants.Object, single bool) error {
	statuses, err := st.ListStatuses(ctx)
	if err != nil {
		return err
	}
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		t := o.(*tenants.Tenant)
		state := "-"
		if s, ok := statuses[t.ID()]; ok {
			state = s.State
		}
		status := string(t.Spec.Status)
		if status == "" {
			status = string(tenants.StatusActive)
		}
		tier := t.Spec.Tier
		if tier == "" {
			tier = tenants.DefaultTier
		}
		rows = append(rows, []string{t.ID(), tier, status, orNone(strings.Join(t.Spec.Hosts, ",")), strconv.Itoa(len(t.Spec.Routes)), rev(t), state})
	}
	if !single {
		// Tenants whose stored value does not decode are not in objs; the
		// control plane's status still names them.
		listed := make(map[string]bool, len(objs))
		for _, o := range objs {
			listed[o.GetMeta().Name] = true
		}
		var broken []string
		for id, s := range statuses {
			if !listed[id] && s.State == tenants.StateInvalid {
				broken = append(broken, id)
			}
		}
		sort.Strings(broken)
		for _, id := range broken {
			rows = append(rows, []string{id, "?", "?", "?", "?", strconv.FormatInt(statuses[id].Revision, 10), tenants.StateInvalid})
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	}
	if err := printTable(g.stdout, []string{"NAME", "TIER", "STATUS", "HOSTS", "ROUTES", "VERSION", "STATE"}, rows); err != nil {
		return err
	}
	if single {
		if s, ok := statuses[objs[0].GetMeta().Name]; ok {
			fmt.Fprintf(g.stdout, "\nStatus: %s (revision %d, %s)\n", s.State, s.Revision, s.Time.Format(time.RFC3339))
			if s.Message != "" {
				fmt.Fprintf(g.stdout, "Message: %s\n", s.Message)
			}
		}
	}
	return nil
}

// printStatusComment writes a tenant's status as YAML comments.
func printStatusComment(ctx context.Context, g *globals, st *store.Store, id string) error {
	s, err := st.GetStatus(ctx, id)
	if err != nil || s == nil {
		return err
	}
	fmt.Fprintf(g.stdout, "# status: %s (revision %d, %s)\n", s.State, s.Revision, s.Time.Format(time.RFC3339))
	for _, line := range strings.Split(s.Message, "\n") {
		if line != "" {
			fmt.Fprintf(g.stdout, "#   %s\n", line)
		}
	}
	return nil
}

func newValidateCmd(g *globals) *cobra.Command {
	var files []string
	c := &cobra.Command{
		Use:   "validate -f FILE|DIR|-",
		Short: "Check manifests without etcd (tenants may name built-in tiers and tiers in the same files)",
		Args:  exactArgs(0, "no arguments (manifests come with -f)"),
		RunE: func(_ *cobra.Command, _ []string) error {
			docs, err := g.loadFiles(files)
			decoded, err := decodeProblems(err)
			if err != nil {
				return err
			}
			if err := withProblems(decoded, tenants.ValidateDocuments(docs, nil)); err != nil {
				return err
			}
			type valid struct {
				File string       `json:"file"`
				Doc  int          `json:"document"`
				Kind tenants.Kind `json:"kind"`
				Name string       `json:"name"`
			}
			out := make([]valid, len(docs))
			for i, d := range docs {
				out[i] = valid{d.File, d.Index, d.Kind(), d.Name()}
			}
			if ok, err := g.printStructured(out); ok {
				return err
			}
			for _, v := range out {
				fmt.Fprintf(g.stdout, "%s/%s valid (%s, document %d)\n", noun(v.Kind), v.Name, v.File, v.Doc)
			}
			return nil
		},
	}
	c.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory or - (repeatable)")
	return c
}

func newDiffCmd(g *globals) *cobra.Command {
	var files []string
	c := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show what apply would change (canonical YAML, stored → applied)",
		Args:  exactArgs(0, "no arguments (manifests come with -f)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, err := g.loadFiles(files)
			decoded, err := decodeProblems(err)
			if err != nil {
				return err
			}
			if len(decoded) > 0 && len(docs) == 0 {
				return decoded
			}
			if len(decoded) > 0 {
				err := g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
					_, err := st.Diff(ctx, docs)
					return err
				})
				return withProblems(decoded, err)
			}
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				entries, err := st.Diff(ctx, docs)
				if err != nil {
					return err
				}
				if ok, err := g.printStructured(entries); ok {
					return err
				}
				for _, e := range entries {
					if e.Outcome == store.Unchanged {
						fmt.Fprintf(g.stdout, "%s/%s unchanged\n", noun(e.Kind), e.Name)
						continue
					}
					fmt.Fprint(g.stdout, e.Diff)
				}
				return nil
			})
		},
	}
	c.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory or - (repeatable)")
	return c
}
