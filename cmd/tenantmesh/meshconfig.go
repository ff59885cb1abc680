package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newMeshConfigCmd(g *globals) *cobra.Command {
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the MeshConfig with every default filled in",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				var stored *tenants.MeshConfig
				o, err := st.Get(ctx, tenants.KindMeshConfig, tenants.MeshConfigName)
				switch {
				case errors.Is(err, store.ErrNotFound):
				case err != nil:
					return err
				default:
					stored = o.(*tenants.MeshConfig)
				}
				m := tenants.DefaultedMeshConfig(stored)
				if g.output == "table" {
					// A table of a nested singleton says less than YAML.
					if stored == nil {
						fmt.Fprintln(g.stdout, "# no MeshConfig stored: these are the defaults")
					}
					return printYAML(g.stdout, m)
				}
				_, err = g.printStructured(m)
				return err
			})
		},
	}
	return groupCmd("meshconfig", "Manage the fleet-wide MeshConfig (singleton \"default\")",
		newApplyCmd(g, []tenants.Kind{tenants.KindMeshConfig}, "Create or update the MeshConfig"),
		get,
	)
}
