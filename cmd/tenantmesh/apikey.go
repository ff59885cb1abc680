package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantmesh/tenantmesh/tenants/store"
)

func newAPIKeyCmd(g *globals) *cobra.Command {
	return groupCmd("apikey", "Manage API keys (several per tenant, so rotation has no gap)",
		newAPIKeyCreateCmd(g), newAPIKeyListCmd(g), newAPIKeyRevokeCmd(g))
}

// createdKey is the -o json|yaml output of apikey create: the only time
// the key is ever shown.
type createdKey struct {
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	Tenant    string     `json:"tenant"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

func newAPIKeyCreateCmd(g *globals) *cobra.Command {
	var name string
	var expires time.Duration
	c := &cobra.Command{
		Use:   "create TENANT [--name N] [--expires 720h]",
		Short: "Create an API key; the key is printed once and only its hash is stored",
		Example: `  tenantmesh apikey create tenant-a --name ci --expires 720h
  tenantmesh apikey create tenant-a -o json | jq -r .key`,
		Args: exactArgs(1, "the tenant"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if expires < 0 {
				return usageError{fmt.Errorf("--expires %s: must not be negative", expires)}
			}
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				key, rec, err := st.CreateAPIKey(ctx, args[0], name, expires, g.actor)
				if err != nil {
					return err
				}
				out := createdKey{ID: rec.ID, Key: key, Tenant: rec.Tenant, Name: rec.Name, CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt}
				if ok, err := g.printStructured(out); ok {
					return err
				}
				exp := "never expires"
				if rec.ExpiresAt != nil {
					exp = "expires " + rec.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(g.stdout, "apikey/%s created for tenant %s (%s)\n", rec.ID, rec.Tenant, exp)
				fmt.Fprintf(g.stdout, "key: %s\n", key)
				fmt.Fprintln(g.stderr, "Store the key now: it is not shown again (only its hash is kept).")
				return nil
			})
		},
	}
	c.Flags().StringVar(&name, "name", "", "a label for the key (where it is used)")
	c.Flags().DurationVar(&expires, "expires", 0, "lifetime of the key, e.g. 720h (default: no expiry)")
	return c
}

func newAPIKeyListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list TENANT",
		Short: "List a tenant's API keys (never the keys themselves)",
		Args:  exactArgs(1, "the tenant"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				keys, err := st.ListAPIKeys(ctx, args[0])
				if err != nil {
					return err
				}
				// The hash is not secret, but it is of no use to a reader.
				type listed struct {
					ID        string     `json:"id"`
					Name      string     `json:"name,omitempty"`
					CreatedAt time.Time  `json:"createdAt"`
					ExpiresAt *time.Time `json:"expiresAt,omitempty"`
					Revoked   bool       `json:"revoked"`
					State     string     `json:"state"`
				}
				now := time.Now()
				out := make([]listed, len(keys))
				rows := make([][]string, len(keys))
				for i, k := range keys {
					state := "active"
					switch {
					case k.Revoked:
						state = "revoked"
					case !k.Usable(now):
						state = "expired"
					}
					out[i] = listed{k.ID, k.Name, k.CreatedAt, k.ExpiresAt, k.Revoked, state}
					exp := "never"
					if k.ExpiresAt != nil {
						exp = k.ExpiresAt.Format(time.RFC3339)
					}
					rows[i] = []string{k.ID, orNone(k.Name), k.CreatedAt.Format(time.RFC3339), exp, state}
				}
				if ok, err := g.printStructured(out); ok {
					return err
				}
				if len(keys) == 0 {
					fmt.Fprintf(g.stderr, "No API keys for tenant %s.\n", args[0])
					return nil
				}
				return printTable(g.stdout, []string{"ID", "NAME", "CREATED", "EXPIRES", "STATE"}, rows)
			})
		},
	}
}

func newAPIKeyRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TENANT ID",
		Short: "Revoke an API key (it stays listed as revoked)",
		Args:  exactArgs(2, "the tenant and the key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				if err := st.RevokeAPIKey(ctx, args[0], args[1], g.actor); err != nil {
					return err
				}
				if ok, err := g.printStructured(map[string]string{"id": args[1], "tenant": args[0], "outcome": "revoked"}); ok {
					return err
				}
				fmt.Fprintf(g.stdout, "apikey/%s revoked\n", args[1])
				return nil
			})
		},
	}
}
