package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

// This file holds the commands every kind shares (apply, get, list,
// delete); tenant.go, tier.go and meshconfig.go put them together.

// loadFiles decodes every -f argument (file, directory or "-"). Like
// tenants.Load it returns the documents that decoded beside the
// tenants.ErrorList of those that did not, so that the caller can check
// the good ones too and report every problem of every file at once
// (withProblems).
func (g *globals) loadFiles(files []string) ([]tenants.Document, error) {
	if len(files) == 0 {
		return nil, usageError{errors.New("no manifests given: use -f FILE, -f DIR or -f - (repeatable)")}
	}
	var docs []tenants.Document
	var list tenants.ErrorList
	for _, f := range files {
		d, err := tenants.Load(f, g.stdin)
		var fe tenants.ErrorList
		switch {
		case errors.As(err, &fe):
			list = append(list, fe...)
		case err != nil:
			return nil, err
		}
		docs = append(docs, d...)
	}
	if err := list.Err(); err != nil {
		return docs, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no documents found in %v", files)
	}
	return docs, nil
}

// decodeProblems splits loadFiles' error: the decode problems of some
// documents (the others still to be checked), or a failure that stops
// the command.
func decodeProblems(err error) (tenants.ErrorList, error) {
	var list tenants.ErrorList
	if err == nil || errors.As(err, &list) {
		return list, nil
	}
	return nil, err
}

// withProblems reports the decode problems together with what checking
// the documents that did decode found (err: an ErrorList, or a failure
// such as an unreachable etcd), in file and document order.
func withProblems(decoded tenants.ErrorList, err error) error {
	var more tenants.ErrorList
	switch {
	case err == nil:
	case errors.As(err, &more):
		decoded = tenants.MergeErrors(decoded, more)
	default:
		return errors.Join(decoded, fmt.Errorf("the documents that decoded were not checked: %w", err))
	}
	return decoded.Err()
}

// onlyKinds refuses documents of other kinds, naming where they are.
func onlyKinds(docs []tenants.Document, cmdPath string, kinds ...tenants.Kind) error {
	var list tenants.ErrorList
	for _, d := range docs {
		ok := false
		for _, k := range kinds {
			ok = ok || d.Kind() == k
		}
		if !ok {
			list = append(list, tenants.FieldError{File: d.File, Doc: d.Index, Kind: d.Kind(), Name: d.Name(), Path: "kind",
				Cause: fmt.Sprintf("%s applies only %v; apply this document with `tenantmesh tenant apply`", cmdPath, kinds)})
		}
	}
	return list.Err()
}

// newApplyCmd applies manifests. kinds limits the accepted kinds (nil:
// every kind).
func newApplyCmd(g *globals, kinds []tenants.Kind, short string) *cobra.Command {
	var files []string
	var dryRun, atomic bool
	c := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: short,
		Example: `  tenantmesh tenant apply -f examples/tenants
  tenantmesh tenant get tenant-a -o yaml > a.yaml   # edit, then:
  tenantmesh tenant apply -f a.yaml                 # fails if somebody changed it meanwhile
  cat tenants/*.yaml | tenantmesh tenant apply -f - --dry-run
  tenantmesh tenant apply -f tenants/ --atomic      # all or nothing, if it fits one etcd transaction`,
		Args: exactArgs(0, "no arguments (manifests come with -f)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, err := g.loadFiles(files)
			decoded, err := decodeProblems(err)
			if err != nil {
				return err
			}
			if kinds != nil {
				if err := onlyKinds(docs, cmd.CommandPath(), kinds...); err != nil {
					return withProblems(decoded, err)
				}
			}
			if len(decoded) > 0 && len(docs) == 0 {
				return decoded
			}
			if len(decoded) > 0 {
				// Nothing is written. The documents that decoded go
				// through a dry run only, so that their problems (invalid
				// fields, a host or issuer already taken) are reported
				// in the same pass.
				err := g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
					_, err := st.Apply(ctx, docs, store.ApplyOptions{Actor: g.actor, DryRun: true})
					return err
				})
				return withProblems(decoded, err)
			}
			// A big apply is many transactions: allow it time per
			// document beyond the usual bound of a command.
			timeout := commandTimeout + time.Duration(len(docs))*applyTimePerDocument
			return g.withStoreTimeout(cmd.Context(), timeout, func(ctx context.Context, st *store.Store) error {
				progress, finish := newProgress(g.stderr)
				res, err := st.Apply(ctx, docs, store.ApplyOptions{Actor: g.actor, DryRun: dryRun, Atomic: atomic, Progress: progress})
				finish()
				if err != nil {
					return err
				}
				if ok, err := g.printStructured(res); ok {
					return err
				}
				suffix := ""
				if dryRun {
					suffix = " (dry run)"
				}
				for _, o := range res.Objects {
					fmt.Fprintf(g.stdout, "%s/%s %s%s\n", noun(o.Kind), o.Name, o.Outcome, suffix)
				}
				return nil
			})
		},
	}
	c.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory of *.yaml/*.yml/*.json, or - for standard input (repeatable)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show what would change without writing")
	c.Flags().BoolVar(&atomic, "atomic", false, "write everything in one etcd transaction or nothing (refused when it does not fit one); without it, a big apply is written in several transactions after all of it was validated, and can be run again if interrupted")
	return c
}

// applyTimePerDocument is the time an apply may take per document beyond
// commandTimeout (10,000 documents: about 3 minutes more).
const applyTimePerDocument = 20 * time.Millisecond

// newGetCmd prints one object; show adds kind-specific detail to tables.
func newGetCmd(g *globals, kind tenants.Kind, table func(ctx context.Context, st *store.Store, objs []tenants.Object, single bool) error) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: fmt.Sprintf("Show one %s (-o yaml prints it ready to edit and re-apply)", kind),
		Args:  exactArgs(1, "the name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				o, err := st.Get(ctx, kind, args[0])
				if err != nil {
					if kind == tenants.KindTenant && !errors.Is(err, store.ErrNotFound) {
						// A stored value that does not decode (written by
						// hand): the status says what is served instead.
						if serr := printStatusComment(ctx, &globals{stdout: g.stderr}, st, args[0]); serr != nil {
							return errors.Join(err, serr)
						}
					}
					return err
				}
				if kind == tenants.KindTenant && g.output == "yaml" {
					// The status is not part of the manifest (apply would
					// refuse it); show it as comments above it.
					if err := printStatusComment(ctx, g, st, args[0]); err != nil {
						return err
					}
				}
				if ok, err := g.printStructured(o); ok {
					return err
				}
				return table(ctx, st, []tenants.Object{o}, true)
			})
		},
	}
}

func newListCmd(g *globals, kind tenants.Kind, table func(ctx context.Context, st *store.Store, objs []tenants.Object, single bool) error) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: fmt.Sprintf("List every %s", kind),
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				objs, err := st.List(ctx, kind)
				if err != nil {
					return err
				}
				if ok, err := g.printStructured(listOf(objs)); ok {
					return err
				}
				if len(objs) == 0 {
					fmt.Fprintf(g.stderr, "No %s objects found.\n", kind)
					return nil
				}
				return table(ctx, st, objs, false)
			})
		},
	}
}

// objectList is the -o json|yaml form of a list, kubectl-style.
type objectList struct {
	Items []tenants.Object `json:"items"`
}

func listOf(objs []tenants.Object) objectList {
	if objs == nil {
		objs = []tenants.Object{}
	}
	return objectList{Items: objs}
}

func newDeleteCmd(g *globals, kind tenants.Kind, extra string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: fmt.Sprintf("Delete a %s%s", kind, extra),
		Args:  exactArgs(1, "the name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				if err := st.Delete(ctx, kind, args[0], g.actor); err != nil {
					return err
				}
				if ok, err := g.printStructured(map[string]string{"kind": string(kind), "name": args[0], "outcome": "deleted"}); ok {
					return err
				}
				fmt.Fprintf(g.stdout, "%s/%s deleted\n", noun(kind), args[0])
				return nil
			})
		},
	}
}

// noun is the lower-case kind used in output (tenant/tenant-a).
func noun(k tenants.Kind) string { return strings.ToLower(string(k)) }

func rev(o tenants.Object) string {
	if _, err := strconv.ParseInt(o.GetMeta().ResourceVersion, 10, 64); err != nil {
		return "-"
	}
	return o.GetMeta().ResourceVersion
}
