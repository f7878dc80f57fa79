package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

func (a *app) trackActivationCommand() *cobra.Command {
	var instance, ip string
	c := &cobra.Command{
		Use:     "track-activation KEY --instance-id ID [--ip-address IP]",
		Example: `  manage-licenses track-activation "$KEY" --instance-id instance-001 --ip-address 192.0.2.10`,
		Short:   "Record an instance's activation of a license (takes a seat)",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, config.Write, false)
			if err != nil {
				return err
			}
			defer done()
			res, err := svc.Activate(c.Context(), licensing.SeatRequest{Key: args[0], InstanceID: instance, IPAddress: ip, CountSeats: true})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "Activation recorded: instance %s on license %s of %s (%d/%d seats in use)\n",
				instance, res.License.ID, res.License.CustomerID, res.License.ActiveInstances, res.License.MaxInstances)
			return nil
		},
	}
	c.Flags().StringVar(&instance, "instance-id", "", "the CAIO instance's id (required)")
	c.Flags().StringVar(&ip, "ip-address", "", "the instance's IP address")
	requireFlags(c, "instance-id")
	return c
}

func (a *app) deactivateCommand() *cobra.Command {
	var instance string
	c := &cobra.Command{
		Use:     "deactivate KEY_OR_LICENSE_ID --instance-id ID",
		Example: `  manage-licenses deactivate "$KEY" --instance-id instance-001`,
		Short:   "Free an instance's seat at once",
		Long: `Free an instance's seat at once, for another instance to take. The instance
learns it at its next renewal (NO_SEAT) and stops then; cut off from the
server, it runs on the lease it holds until that ends. (An instance that
deactivates itself through the API frees its seat only when its lease ends,
since a copy of that lease verifies until then.)`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, config.Write, false)
			if err != nil {
				return err
			}
			defer done()
			res, err := svc.Deactivate(c.Context(), licensing.SeatRequest{Key: args[0], InstanceID: instance, Immediate: true})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			if !res.Changed {
				fmt.Fprintf(a.stdout, "Instance %s was already deactivated on license %s\n", instance, res.License.ID)
				return nil
			}
			fmt.Fprintf(a.stdout, "Instance %s deactivated on license %s; its seat is free\n", instance, res.License.ID)
			return nil
		},
	}
	c.Flags().StringVar(&instance, "instance-id", "", "the CAIO instance's id (required)")
	requireFlags(c, "instance-id")
	return c
}

func (a *app) listActivationsCommand() *cobra.Command {
	var key, customer, status string
	var limit int
	c := &cobra.Command{
		Use: "list-activations [--license-key KEY] [--customer ID] [--status S] [--limit N]",
		Example: `  manage-licenses list-activations --status live
  manage-licenses list-activations --customer CUST-001 --limit 50 --json`,
		Short: "List activations, of one license or all",
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := a.service(c, config.Read, false)
			if err != nil {
				return err
			}
			defer done()
			acts, err := svc.Activations(c.Context(), key)
			if err != nil {
				return err
			}
			now := time.Now()
			switch status {
			case "", licensing.SeatLive, licensing.SeatReleasing, licensing.SeatExpiredLease, licensing.SeatDeactivated:
			default:
				return usageErrorf("--status %q: use %s, %s, %s or %s", status, licensing.SeatLive, licensing.SeatReleasing, licensing.SeatExpiredLease, licensing.SeatDeactivated)
			}
			acts = limited(filtered(acts, func(ac licensing.Activation) bool {
				return (customer == "" || ac.CustomerID == customer) && (status == "" || ac.State(now) == status)
			}), limit)
			if a.jsonOut {
				return a.printJSON(acts)
			}
			t := newTable(a.stdout, "LICENSE", "CUSTOMER", "INSTANCE", "KIND", "SEAT", "LEASE UNTIL", "IP", "FIRST SEEN", "LAST SEEN", "DEACTIVATED")
			for _, ac := range acts {
				deact, until := "-", "-"
				if ac.DeactivatedAt != nil {
					deact = rfc3339(*ac.DeactivatedAt)
				}
				if ac.LeaseExpiresAt != nil {
					until = rfc3339(*ac.LeaseExpiresAt)
				}
				t.row(ac.LicenseID, ac.CustomerID, ac.InstanceID, ac.Kind, ac.State(now), until, orDash(ac.IPAddress),
					rfc3339(ac.FirstSeen), rfc3339(ac.LastSeen), deact)
			}
			return t.flush()
		},
	}
	c.Flags().StringVar(&key, "license-key", "", "only this license (a key or license id)")
	c.Flags().StringVar(&customer, "customer", "", "only this customer's activations")
	c.Flags().StringVar(&status, "status", "", "only seats in this state: "+licensing.SeatLive+", "+licensing.SeatReleasing+", "+licensing.SeatExpiredLease+", "+licensing.SeatDeactivated)
	c.Flags().IntVar(&limit, "limit", 0, "at most N (the first N in order; 0: all)")
	return c
}
