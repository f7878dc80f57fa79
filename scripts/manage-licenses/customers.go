package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) addCustomerCommand() *cobra.Command {
	var email string
	c := &cobra.Command{
		Use:     "add-customer CUSTOMER_ID NAME",
		Example: `  manage-licenses add-customer CUST-001 "Acme Corp" --email ops@acme.example`,
		Short:   "Add a customer",
		Args:    cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, wiring.Write, secretNone)
			if err != nil {
				return err
			}
			defer done()
			cust, err := svc.AddCustomer(c.Context(), args[0], args[1], email)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(cust)
			}
			fmt.Fprintf(a.stdout, "Customer %s (%s) added\n", cust.ID, cust.Name)
			return nil
		},
	}
	c.Flags().StringVar(&email, "email", "", "customer contact email")
	return c
}

func (a *app) updateCustomerCommand() *cobra.Command {
	var name, email string
	c := &cobra.Command{
		Use:     "update-customer CUSTOMER_ID [--name NAME] [--email EMAIL]",
		Example: `  manage-licenses update-customer CUST-001 --email licensing@acme.example`,
		Short:   "Change a customer's name or email",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var u licensing.CustomerUpdate
			if c.Flags().Changed("name") {
				u.Name = &name
			}
			if c.Flags().Changed("email") {
				u.Email = &email
			}
			svc, done, err := a.service(c, wiring.Write, secretNone)
			if err != nil {
				return err
			}
			defer done()
			cust, err := svc.UpdateCustomer(c.Context(), args[0], u)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(cust)
			}
			fmt.Fprintf(a.stdout, "Customer %s updated: %s <%s>\n", cust.ID, cust.Name, cust.Email)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "new name")
	c.Flags().StringVar(&email, "email", "", "new email (empty to clear)")
	return c
}

func (a *app) listCustomersCommand() *cobra.Command {
	return &cobra.Command{
		Use: "list-customers",
		Example: `  manage-licenses list-customers
  manage-licenses --json list-customers`,
		Short: "List customers",
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := a.service(c, wiring.Read, secretNone)
			if err != nil {
				return err
			}
			defer done()
			custs, err := svc.Customers(c.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(custs)
			}
			t := newTable(a.stdout, "CUSTOMER", "NAME", "EMAIL", "CREATED")
			for _, cu := range custs {
				t.row(cu.ID, cu.Name, orDash(cu.Email), rfc3339(cu.CreatedAt))
			}
			return t.flush()
		},
	}
}
