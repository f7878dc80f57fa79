package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func (a *app) showLicenseCommand() *cobra.Command {
	var showKey bool
	c := &cobra.Command{
		Use:   "show-license KEY_OR_LICENSE_ID [--show-key]",
		Short: "Show everything about one license: terms, status, keys issued, seats, deliveries, latest events",
		Long: `Show everything about one license: its terms and status, the keys issued for
it (their ids and dates; the keys themselves only with --show-key, which needs
the signing secret), its seats with when each was last seen, its deliveries
and reminders, and its latest events. History the database no longer holds
is read from the archives: the latest 20 events, every delivery, and the
seats that ended, the latest, up to 20 with those the database holds.`,
		Example: `  manage-licenses show-license "$(manage-licenses --json list-licenses --customer CUST-001 --limit 1 | jq -r '.[0].license_id')"
  manage-licenses show-license "$KEY" --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, store, done, err := a.serviceAndStore(c, wiring.Read, secretIf(showKey))
			if err != nil {
				return err
			}
			defer done()
			d, err := svc.ShowLicense(c.Context(), store.Archive(), args[0], showKey)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(d)
			}
			l := d.License
			fmt.Fprintf(a.stdout, "License %s\n", l.ID)
			if err := a.fields(
				"customer", l.CustomerID,
				"status", string(d.EffectiveStatus),
				"tier", l.Tier,
				"features", orDash(strings.Join(l.Features, ", ")),
				"issued", rfc3339(l.IssuedAt),
				"expires", rfc3339(l.ExpiresAt),
				"seats", seatsInUse(l, d.Activations, time.Now()),
				"max services", strconv.FormatUint(uint64(l.MaxServices), 10),
				"max requests/day", strconv.FormatUint(uint64(l.MaxRequestsPerDay), 10),
				"lease", (time.Duration(l.LeaseSeconds) * time.Second).String(),
				"seat timeout", l.SeatTimeoutText(),
				"grace", graceText(l),
				"overage", overageText(l),
				"recipient", orDash(l.Recipient),
			); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "\nKeys issued")
			t := newTable(a.stdout, "ID", "ISSUED", "EXPIRES", "KEY")
			for _, k := range d.Keys {
				t.row(k.ID, rfc3339(k.IssuedAt), rfc3339(k.ExpiresAt), orDash(k.Key))
			}
			t.flush()
			fmt.Fprintln(a.stdout, "\nSeats")
			now := time.Now()
			t = newTable(a.stdout, "INSTANCE", "SEAT", "LEASE UNTIL", "LAST SEEN", "IP")
			for _, ac := range d.Activations {
				until := "-"
				if ac.LeaseExpiresAt != nil {
					until = rfc3339(*ac.LeaseExpiresAt)
				}
				state := ac.State(now)
				if ac.OverageSeat(now) {
					state += " (overage)"
				}
				t.row(ac.InstanceID, state, until, rfc3339(ac.LastSeen), orDash(ac.IPAddress))
			}
			t.flush()
			fmt.Fprintln(a.stdout, "\nDeliveries and reminders")
			t = newTable(a.stdout, "AT", "KIND", "RECIPIENT", "VIA", "OUTCOME", "ERROR")
			for _, dl := range d.Deliveries {
				t.row(rfc3339(dl.At), deliveryKind(dl.Kind, dl.ThresholdDays), dl.Recipient, dl.Provider, dl.Outcome, orDash(dl.Error))
			}
			t.flush()
			fmt.Fprintln(a.stdout, "\nLatest events")
			t = newTable(a.stdout, "AT", "KIND", "ACTOR", "INSTANCE", "DETAIL")
			for _, e := range d.Events {
				t.row(rfc3339(e.At), e.Kind, e.Actor, orDash(e.InstanceID), orDash(e.Detail))
			}
			return t.flush()
		},
	}
	c.Flags().BoolVar(&showKey, "show-key", false, "include the keys themselves (needs the signing secret)")
	return c
}

// seatsInUse is show-license's seats line: the seats in use against max
// instances, and how many of them are overage seats (taken above max
// instances under the license's overage allowance), which is why in use
// can exceed max.
func seatsInUse(l licensing.License, seats []licensing.Activation, now time.Time) string {
	over := 0
	for _, s := range seats {
		if s.OverageSeat(now) {
			over++
		}
	}
	text := fmt.Sprintf("%d of %d in use", l.ActiveInstances, l.MaxInstances)
	switch {
	case over == 1:
		text += ", 1 of them an overage seat"
	case over > 1:
		text += fmt.Sprintf(", %d of them overage seats", over)
	}
	return text
}
