package main

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
	"github.com/caio-licensing/caio-licensing/shared/wiring/mailwiring"
)

func (a *app) statsCommand() *cobra.Command {
	var days int
	c := &cobra.Command{
		Use: "stats [--days N]",
		Example: `  manage-licenses stats
  manage-licenses --json stats --days 60`,
		Short: "Count licenses: total, active, in grace, expired, expiring soon, suspended, revoked, per tier; seats, overage seats",
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := a.service(c, wiring.Read, secretNone)
			if err != nil {
				return err
			}
			defer done()
			st, err := svc.Stats(c.Context(), days)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(st)
			}
			fmt.Fprintln(a.stdout, "License statistics")
			if err := a.fields(
				"total", strconv.Itoa(st.Total),
				"active", strconv.Itoa(st.Active),
				"in grace", strconv.Itoa(st.InGrace),
				"expired", strconv.Itoa(st.Expired),
				fmt.Sprintf("expiring soon (%dd)", st.ExpiringWithinDays), strconv.Itoa(st.ExpiringSoon),
				"suspended", strconv.Itoa(st.Suspended),
				"revoked", strconv.Itoa(st.Revoked),
				"customers", strconv.Itoa(st.Customers),
				"active instances", strconv.Itoa(st.ActiveInstances),
				"seats", fmt.Sprintf("%d live (%d offline), %d expired leases, %d deactivated", st.Seats.Live, st.Seats.Offline, st.Seats.Expired, st.Seats.Deactivated),
				"overage seats", strconv.Itoa(st.Seats.Overage),
			); err != nil {
				return err
			}
			if len(st.ByTier) == 0 {
				return nil
			}
			fmt.Fprintln(a.stdout)
			tiers := make([]string, 0, len(st.ByTier))
			for t := range st.ByTier {
				tiers = append(tiers, t)
			}
			sort.Strings(tiers)
			t := newTable(a.stdout, "TIER", "TOTAL", "ACTIVE")
			for _, name := range tiers {
				t.row(name, strconv.Itoa(st.ByTier[name].Total), strconv.Itoa(st.ByTier[name].Active))
			}
			return t.flush()
		},
	}
	c.Flags().IntVar(&days, "days", licensing.DefaultExpiringDays, "window for expiring soon, in days")
	return c
}

func (a *app) renewalRemindersCommand() *cobra.Command {
	var days int
	var send bool
	c := &cobra.Command{
		Use:   "renewal-reminders [--days N] [--send]",
		Short: "List active licenses that expire within N days, and those in grace; with --send, email the reminders due",
		Long: `List active licenses that expire within N days, and those in grace; with
--send, email the reminders due. One rule for both: --days N is the one
threshold; without it the thresholds are CAIO_REMINDER_DAYS (default 30,7,1),
and the list covers the furthest of them. A license in grace (expired, within
its grace days) is due a reminder each day of its grace, which says when it
expired and when it stops working.`,
		Example: `  manage-licenses renewal-reminders
  CAIO_REMINDER_DAYS=60,14 manage-licenses renewal-reminders --json
  manage-licenses renewal-reminders --days 7 --send`,
		RunE: func(c *cobra.Command, _ []string) error {
			if send {
				return a.sendReminders(c, days)
			}
			if !c.Flags().Changed("days") {
				thresholds, err := a.env.ReminderDays()
				if err != nil {
					return err
				}
				days = slices.Max(thresholds)
			}
			svc, done, err := a.service(c, wiring.Read, secretNone)
			if err != nil {
				return err
			}
			defer done()
			rs, err := svc.RenewalReminders(c.Context(), days)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(rs)
			}
			if len(rs) == 0 {
				fmt.Fprintf(a.stdout, "No active licenses expire within %d days, and none is in grace\n", days)
				return nil
			}
			t := newTable(a.stdout, "LICENSE", "CUSTOMER", "NAME", "EMAIL", "TIER", "EXPIRES", "IN GRACE UNTIL", "DAYS LEFT")
			for _, r := range rs {
				grace := "-"
				if r.InGrace {
					grace = rfc3339(r.GraceEndsAt)
				}
				t.row(r.LicenseID, r.CustomerID, r.CustomerName, orDash(r.Email), r.Tier, rfc3339(r.ExpiresAt), grace, strconv.Itoa(r.DaysLeft))
			}
			return t.flush()
		},
	}
	c.Flags().IntVar(&days, "days", licensing.DefaultExpiringDays, "the one threshold, in days (default: CAIO_REMINDER_DAYS; the list covers the furthest)")
	c.Flags().BoolVar(&send, "send", false, "email the reminders that are due (each at most once per license and threshold; in grace, once a day)")
	return c
}

// thresholdText is a reminder's threshold: "7", or "grace day 3" for a
// license in grace (a negative threshold, licensing.DueReminder).
func thresholdText(days int) string {
	if days < 0 {
		return fmt.Sprintf("grace day %d", -days)
	}
	return strconv.Itoa(days)
}

// deliveryKind is a delivery's kind with its reminder's threshold:
// "license", "reminder (7d)", "reminder (grace day 3)".
func deliveryKind(kind string, threshold int) string {
	switch {
	case threshold > 0:
		return fmt.Sprintf("%s (%dd)", kind, threshold)
	case threshold < 0:
		return fmt.Sprintf("%s (grace day %d)", kind, -threshold)
	}
	return kind
}

// sendReminders emails the due reminders, sharing the function's
// thresholds and its at-most-once record.
func (a *app) sendReminders(c *cobra.Command, days int) error {
	thresholds, err := a.env.ReminderDays()
	if err != nil {
		return err
	}
	if c.Flags().Changed("days") {
		thresholds = []int{days}
	}
	sender, err := mailwiring.Mailer(c.Context(), a.env)
	if err != nil {
		return err
	}
	svc, done, err := a.service(c, wiring.Write, secretNone)
	if err != nil {
		return err
	}
	defer done()
	counts, outcomes, err := a.deliverer(svc, sender).Reminders(c.Context(), thresholds)
	if err != nil {
		return err
	}
	if a.jsonOut {
		err = a.printJSON(map[string]any{"thresholds": thresholds, "counts": counts, "reminders": outcomes})
	} else {
		t := newTable(a.stdout, "LICENSE", "CUSTOMER", "EMAIL", "EXPIRES", "DAYS LEFT", "THRESHOLD", "RESULT")
		for _, o := range outcomes {
			t.row(o.LicenseID, o.CustomerID, orDash(o.Email), rfc3339(o.ExpiresAt), strconv.Itoa(o.DaysLeft), thresholdText(o.ThresholdDays), o.Result.Status+": "+o.Result.Detail)
		}
		t.flush()
		fmt.Fprintf(a.stdout, "Reminders: %d found, %d sent, %d skipped, %d failed\n", counts.Found, counts.Sent, counts.Skipped, counts.Failed)
	}
	if counts.Failed > 0 {
		return licensing.Errorf(delivery.CodeDeliveryFailed, "%d reminders could not be sent; they stay due and the next run retries them", counts.Failed)
	}
	return err
}

func (a *app) listDeliveriesCommand() *cobra.Command {
	var key string
	var from time.Time
	var wide bool
	c := &cobra.Command{
		Use:     "list-deliveries [--license-key KEY_OR_ID] [--since TIME]",
		Example: `  manage-licenses list-deliveries --since 7d`,
		Short:   "Show every attempt to email a license or a reminder",
		RunE: func(c *cobra.Command, _ []string) error {
			svc, store, done, err := a.serviceAndStore(c, wiring.Read, secretOptional)
			if err != nil {
				return err
			}
			defer done()
			ds, err := svc.DeliveriesWithArchive(c.Context(), store.Archive(), key, from)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(ds)
			}
			t := newListing(a.stdout, wide, column{"AT", 0, false}, column{"LICENSE", 0, false}, column{"KIND", 0, false},
				column{"RECIPIENT", 20, false}, column{"PROVIDER", 0, false}, column{"OUTCOME", 0, false},
				column{"MESSAGE ID", 0, true}, column{"ERROR", 14, false})
			for _, d := range ds {
				t.row(t.when(d.At), t.id(d.LicenseID), deliveryKind(d.Kind, d.ThresholdDays), d.Recipient, d.Provider, d.Outcome, orDash(d.MessageID), orDash(d.Error))
			}
			return t.flush()
		},
	}
	c.Flags().StringVar(&key, "license-key", "", "only this license (a key or license id)")
	sinceFlag(c, &from, "since", "only deliveries at or after this time (RFC 3339, a date, or an age such as 7d or 24h); reaches into the archives")
	wideFlag(c, &wide)
	return c
}

func (a *app) listEventsCommand() *cobra.Command {
	var key, customer, kind string
	var since time.Time
	var limit int
	var wide bool
	c := &cobra.Command{
		Use:   "list-events [--license-key KEY] [--customer ID] [--kind KIND] [--since TIME] [--limit N]",
		Short: "Show the audit log (oldest first)",
		Example: `  manage-licenses list-events --since 7d
  manage-licenses list-events --kind activation.created --customer CUST-001 --limit 20`,
		RunE: func(c *cobra.Command, _ []string) error {
			f := licensing.EventFilter{LicenseID: key, Since: since}
			svc, store, done, err := a.serviceAndStore(c, wiring.Read, secretOptional)
			if err != nil {
				return err
			}
			defer done()
			evs, err := svc.EventsWithArchive(c.Context(), store.Archive(), f)
			if err != nil {
				return err
			}
			evs = limited(filtered(evs, func(e licensing.Event) bool {
				return (customer == "" || e.CustomerID == customer) && (kind == "" || e.Kind == kind)
			}), limit)
			if a.jsonOut {
				return a.printJSON(evs)
			}
			t := newListing(a.stdout, wide, column{"ID", 0, false}, column{"AT", 0, false}, column{"KIND", 0, false},
				column{"ACTOR", 0, true}, column{"CUSTOMER", 12, true}, column{"LICENSE", 0, false}, column{"INSTANCE", 14, false},
				column{"DETAIL", 22, false})
			for _, e := range evs {
				t.row(strconv.FormatInt(e.ID, 10), t.when(e.At), e.Kind, e.Actor, orDash(e.CustomerID), orDash(t.id(e.LicenseID)), orDash(e.InstanceID), orDash(e.Detail))
			}
			return t.flush()
		},
	}
	c.Flags().StringVar(&key, "license-key", "", "only this license (a key or license id)")
	sinceFlag(c, &since, "since", "only events at or after this time (RFC 3339, a date 2006-01-02, or an age such as 7d or 24h); reaches into the archives")
	customerFlag(c, &customer, "only this customer's events")
	choiceFlag(c, &kind, "kind", "", "only events of this kind (such as activation.created, license.revoked)", licensing.EventKinds...)
	c.Flags().IntVar(&limit, "limit", 0, "at most N (the first N in order; 0: all)")
	wideFlag(c, &wide)
	return c
}
