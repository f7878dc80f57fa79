package main

import (
	"context"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

// Shell completion of values (cobra's `completion` command writes the
// scripts): license ids, customer ids and tiers are read from the
// database; statuses, kinds and formats are fixed lists.

// completeFromDB reads the database for completions; any failure offers
// nothing rather than printing into the shell.
func (a *app) completeFromDB(c *cobra.Command, pick func(context.Context, *licensing.Service) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	store, err := a.openStore(c, wiring.Read)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	defer store.Close()
	// Completion only lists ids and names: no key is verified.
	vals, err := pick(c.Context(), wiring.NewService(store, "cli:completion", wiring.Trust{Unproven: true}, nil, nil))
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return vals, cobra.ShellCompDirectiveNoFileComp
}

func licenseIDs(ctx context.Context, svc *licensing.Service) ([]string, error) {
	lics, err := svc.Licenses(ctx, "", "")
	var out []string
	for _, l := range lics {
		out = append(out, l.ID+"\t"+l.CustomerID+" "+l.Tier+" "+string(l.EffectiveStatus))
	}
	return out, err
}

func customerIDs(ctx context.Context, svc *licensing.Service) ([]string, error) {
	cs, err := svc.Customers(ctx)
	var out []string
	for _, c := range cs {
		out = append(out, c.ID+"\t"+c.Name)
	}
	return out, err
}

func tiers(ctx context.Context, svc *licensing.Service) ([]string, error) {
	lics, err := svc.Licenses(ctx, "", "")
	var out []string
	for _, l := range lics {
		if !slices.Contains(out, l.Tier) {
			out = append(out, l.Tier)
		}
	}
	return out, err
}

func fixed(vals ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}

// addCompletions wires value completion into every command by what its
// arguments and flags take.
func (a *app) addCompletions(root *cobra.Command) {
	fromDB := func(pick func(context.Context, *licensing.Service) ([]string, error)) cobra.CompletionFunc {
		return func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			return a.completeFromDB(c, pick)
		}
	}
	for _, c := range root.Commands() {
		fields := strings.Fields(c.Use)
		if len(fields) > 1 {
			first := fields[1]
			var second string
			if len(fields) > 2 {
				second = fields[2]
			}
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				switch {
				case len(args) == 0 && strings.HasPrefix(first, "KEY_OR_"):
					return a.completeFromDB(cmd, licenseIDs)
				case len(args) == 0 && first == "CUSTOMER_ID":
					return a.completeFromDB(cmd, customerIDs)
				case len(args) == 1 && second == "TIER":
					return a.completeFromDB(cmd, tiers)
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
		flags := map[string]cobra.CompletionFunc{
			"customer":    fromDB(customerIDs),
			"license-key": fromDB(licenseIDs),
			"tier":        fromDB(tiers),
		}
		for name, fn := range flags {
			if c.Flags().Lookup(name) != nil {
				c.RegisterFlagCompletionFunc(name, fn)
			}
		}
	}
}
