package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants"
	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newSharedCmd(g *globals) *cobra.Command {
	return groupCmd("shared", "Manage shared services (reachable by every tenant, or by those with a feature, through per-tenant aliases)",
		newApplyCmd(g, []tenants.Kind{tenants.KindSharedService}, "Create or update shared services"),
		newGetCmd(g, tenants.KindSharedService, g.sharedTable),
		newListCmd(g, tenants.KindSharedService, g.sharedTable),
		newDeleteCmd(g, tenants.KindSharedService, " (its routes and every tenant's alias go with it)"),
	)
}

func (g *globals) sharedTable(_ context.Context, _ *store.Store, objs []tenants.Object, _ bool) error {
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		s := o.(*tenants.SharedService)
		eps := make([]string, len(s.Spec.Endpoints))
		for i, e := range s.Spec.Endpoints {
			eps[i] = fmt.Sprintf("%s:%d", e.Address, e.Port)
		}
		entitled := "all tenants"
		if len(s.Spec.Features) > 0 {
			entitled = "features " + strings.Join(s.Spec.Features, ",")
		}
		perTenant := "-"
		if p := s.Spec.PerTenant; p != nil && p.CircuitBreaker != nil && p.CircuitBreaker.MaxRequests > 0 {
			perTenant = fmt.Sprintf("%d", p.CircuitBreaker.MaxRequests)
		}
		rows = append(rows, []string{s.Metadata.Name, strings.Join(eps, " "), entitled, perTenant, rev(s)})
	}
	return printTable(g.stdout, []string{"NAME", "ENDPOINTS", "ENTITLED", "MAX-REQUESTS/TENANT", "VERSION"}, rows)
}
