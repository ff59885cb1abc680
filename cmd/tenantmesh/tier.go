package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newTierCmd(g *globals) *cobra.Command {
	return groupCmd("tier", "Manage tiers (defaults for tenants; free, standard and enterprise are built in)",
		newApplyCmd(g, []tenants.Kind{tenants.KindTier}, "Create or update tiers"),
		newGetCmd(g, tenants.KindTier, g.tierTable),
		newListCmd(g, tenants.KindTier, g.tierTable),
		newDeleteCmd(g, tenants.KindTier, " (refused while tenants use it)"),
	)
}

func (g *globals) tierTable(_ context.Context, _ *store.Store, objs []tenants.Object, _ bool) error {
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		t := o.(*tenants.Tier)
		local, global := "-", "-"
		if rl := t.Spec.RateLimits; rl != nil {
			if rl.Local != nil {
				local = fmt.Sprintf("%d/%s+%d", rl.Local.Requests, rl.Local.Per, rl.Local.Burst)
			}
			if len(rl.Global) > 0 {
				global = fmt.Sprintf("%d/%s", rl.Global[0].Requests, rl.Global[0].Per)
			}
		}
		rows = append(rows, []string{t.Metadata.Name, local, global, strconv.Itoa(t.Spec.MaxConcurrentRequests), orNone(string(t.Spec.Priority)), rev(t)})
	}
	return printTable(g.stdout, []string{"NAME", "LOCAL", "GLOBAL", "MAX-CONCURRENT", "PRIORITY", "VERSION"}, rows)
}
