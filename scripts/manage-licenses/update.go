package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) updateLicenseCommand() *cobra.Command {
	var tier string
	var expiresAt time.Time
	var features []string
	var maxInstances, maxServices, maxRequests, leaseHours, maxActivations, seatTimeout, graceDays, overage int64
	c := &cobra.Command{
		Use:   "update-license KEY_OR_LICENSE_ID [--max-instances N] [--max-services N] [--max-requests-per-day N] [--features F...] [--tier T] [--expires-at TIME] [--lease-hours N] [--seat-timeout-minutes N] [--max-activations-per-day N] [--grace-days N] [--overage-percent P]",
		Short: "Change a license's terms; prints the new key that carries them",
		Long: `Change a license's terms. Terms are signed into keys, so this issues a new key
(it needs the signing secret) and prints it, like renew-license.

From then on the license server enforces the new terms online for every key of
the license: seats (max instances), the churn limit, the lease and the seat
timeout, the grace days and the overage allowance, expiry and status come from
the database. A lease shorter than the
seat timeout is refused: give both (--seat-timeout-minutes 0 is the lease). An instance that verifies a key offline reads
the terms in that key: give it the new key. Earlier keys stay valid until
they expire or the license is revoked.`,
		Example: `  manage-licenses update-license "$KEY" --max-instances 10
  manage-licenses update-license "$KEY" --features analytics,audit --tier enterprise
  manage-licenses update-license "$KEY" --grace-days 14 --overage-percent 20`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var ch licensing.TermsChange
			flags := c.Flags()
			if flags.NFlag() == 0 {
				return usageErrorf("nothing to change: give at least one of --max-instances, --max-services, --max-requests-per-day, --features, --tier, --expires-at, --lease-hours, --seat-timeout-minutes, --max-activations-per-day, --grace-days, --overage-percent")
			}
			if flags.Changed("tier") {
				ch.Tier = &tier
			}
			if flags.Changed("features") {
				ch.Features = &features
			}
			for name, p := range map[string]**int64{"max-instances": &ch.MaxInstances, "max-services": &ch.MaxServices,
				"max-requests-per-day": &ch.MaxRequestsPerDay, "max-activations-per-day": &ch.MaxActivationsPerDay} {
				if flags.Changed(name) {
					v := map[string]int64{"max-instances": maxInstances, "max-services": maxServices,
						"max-requests-per-day": maxRequests, "max-activations-per-day": maxActivations}[name]
					*p = &v
				}
			}
			if flags.Changed("lease-hours") {
				secs := leaseHours * 3600
				ch.LeaseSeconds = &secs
			}
			if flags.Changed("seat-timeout-minutes") {
				secs := seatTimeout * 60
				ch.SeatTimeoutSeconds = &secs
			}
			if flags.Changed("grace-days") {
				ch.GraceDays = &graceDays
			}
			if flags.Changed("overage-percent") {
				ch.OveragePercent = &overage
			}
			if flags.Changed("expires-at") {
				ch.ExpiresAt = &expiresAt
			}
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			is, err := svc.UpdateTerms(c.Context(), args[0], ch)
			if err != nil {
				return err
			}
			if is.Unchanged {
				if a.jsonOut {
					return a.printJSON(map[string]any{"license_id": is.License.ID, "unchanged": true})
				}
				fmt.Fprintf(a.stdout, "License %s already has these terms: nothing changed, no new key issued\n", is.License.ID)
				return nil
			}
			return a.printIssued("License updated", is)
		},
	}
	f := c.Flags()
	f.StringVar(&tier, "tier", "", "the new tier")
	f.StringSliceVar(&features, "features", nil, "the new features (replace the old ones; a,b or a b)")
	f.Int64Var(&maxInstances, "max-instances", 0, "the new max instances (seats)")
	f.Int64Var(&maxServices, "max-services", 0, "the new max services")
	f.Int64Var(&maxRequests, "max-requests-per-day", 0, "the new max requests per day")
	f.Var(&timeValue{p: &expiresAt, parse: parseFuture}, "expires-at", "the new expiry (RFC 3339 or a date)")
	f.Int64Var(&leaseHours, "lease-hours", 0, "the new lease, in hours")
	f.Int64Var(&maxActivations, "max-activations-per-day", 0, "the new churn limit (0: max(10, 2 x max instances))")
	seatTimeoutFlag(c, &seatTimeout)
	graceAndOverageFlags(c, &graceDays, &overage)
	return c
}
