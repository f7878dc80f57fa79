package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) trackActivationCommand() *cobra.Command {
	var instance, ip string
	c := &cobra.Command{
		Use:     "track-activation KEY --instance-id ID [--ip-address IP]",
		Example: `  manage-licenses track-activation "$KEY" --instance-id instance-001 --ip-address 192.0.2.10`,
		Short:   "Record an instance's activation of a license (takes a seat)",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, wiring.Write, secretOptional)
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
			// The API answers GRACE or OVERAGE here: the operator sees the same.
			if code := res.Outcome(res.At); code != licensing.CodeValid {
				fmt.Fprintf(a.stdout, "%s: %s\n", code, res.Warning(res.At))
			}
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
			svc, done, err := a.service(c, wiring.Write, secretOptional)
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
	var wide bool
	c := &cobra.Command{
		Use: "list-activations [--license-key KEY] [--customer ID] [--status S] [--limit N]",
		Example: `  manage-licenses list-activations --status live
  manage-licenses list-activations --customer CUST-001 --limit 50 --json`,
		Short: "List activations, of one license or all",
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := a.service(c, wiring.Read, secretOptional)
			if err != nil {
				return err
			}
			defer done()
			acts, err := svc.Activations(c.Context(), key)
			if err != nil {
				return err
			}
			now := time.Now()
			acts = limited(filtered(acts, func(ac licensing.Activation) bool {
				return (customer == "" || ac.CustomerID == customer) && (status == "" || ac.State(now) == status)
			}), limit)
			if a.jsonOut {
				return a.printJSON(acts)
			}
			t := newListing(a.stdout, wide, column{"LICENSE", 0, false}, column{"CUSTOMER", 10, false}, column{"INSTANCE", 16, false},
				column{"KIND", 0, false}, column{"SEAT", 0, false}, column{"LEASE UNTIL", 0, false}, column{"IP", 15, false},
				column{"FIRST SEEN", 0, true}, column{"LAST SEEN", 0, true}, column{"DEACTIVATED", 0, true})
			for _, ac := range acts {
				deact, until := "-", "-"
				if ac.DeactivatedAt != nil {
					deact = t.when(*ac.DeactivatedAt)
				}
				if ac.LeaseExpiresAt != nil {
					until = t.when(*ac.LeaseExpiresAt)
				}
				t.row(t.id(ac.LicenseID), ac.CustomerID, ac.InstanceID, ac.Kind, ac.State(now), until, orDash(ac.IPAddress),
					t.when(ac.FirstSeen), t.when(ac.LastSeen), deact)
			}
			return t.flush()
		},
	}
	c.Flags().StringVar(&key, "license-key", "", "only this license (a key or license id)")
	customerFlag(c, &customer, "only this customer's activations")
	seats := []string{licensing.SeatLive, licensing.SeatReleasing, licensing.SeatExpiredLease, licensing.SeatDeactivated}
	choiceFlag(c, &status, "status", "", "only seats in this state: "+orList(seats), seats...)
	c.Flags().IntVar(&limit, "limit", 0, "at most N (the first N in order; 0: all)")
	wideFlag(c, &wide)
	return c
}
