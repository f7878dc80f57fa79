package licensing

import (
	"context"
	"slices"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/metrics"
)

// Event kinds of deliveries.
const (
	EventDeliverySent    = "delivery.sent"
	EventDeliveryFailed  = "delivery.failed"
	EventDeliverySkipped = "delivery.skipped"
)

// Sendable is what an email about a license needs.
type Sendable struct {
	License  License
	Customer Customer
	// Key is the license's current key (empty for reminders).
	Key string
}

// Sendable returns a license (a key or license id) with its current key and
// customer. It needs the secret: keys are stored only sealed.
func (s *Service) Sendable(ctx context.Context, ref string) (Sendable, error) {
	var out Sendable
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		lic, err := s.resolveLicense(tx, ref)
		if err != nil {
			return err
		}
		box, err := s.keys.sealingKey(tx)
		if err != nil {
			return err
		}
		lk, err := tx.LatestLicenseKey(lic.ID)
		if err != nil {
			return err
		}
		key, err := box.Open(lk.Sealed, licenseKeyAAD(lic.ID))
		if err != nil {
			return errSecretMismatch()
		}
		c, err := s.customer(tx, lic.CustomerID)
		out = Sendable{License: lic, Customer: c, Key: string(key)}
		return err
	})
	return out, err
}

// RecordDelivery records an attempt to email a license.
func (s *Service) RecordDelivery(ctx context.Context, d Delivery) error {
	return s.RecordDeliveries(ctx, []Delivery{d})
}

// RecordDeliveries records several attempts in one write (the reminders a
// run skipped).
func (s *Service) RecordDeliveries(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	now := s.now()
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		for i := range ds {
			if ds[i].At.IsZero() {
				ds[i].At = now
			}
			if err := s.recordDelivery(tx, ds[i]); err != nil {
				return err
			}
		}
		return nil
	})
	for _, d := range ds {
		s.countEmail(d, err)
	}
	return err
}

// countEmail counts a recorded delivery by its outcome.
func (s *Service) countEmail(d Delivery, err error) {
	if err == nil {
		metrics.OrNop(s.cfg.Metrics).Count(metrics.Emails, 1, "outcome", d.Outcome)
	}
}

func (s *Service) recordDelivery(tx Tx, d Delivery) error {
	if err := tx.InsertDelivery(d); err != nil {
		return err
	}
	kind := map[string]string{OutcomeSent: EventDeliverySent, OutcomeSkipped: EventDeliverySkipped}[d.Outcome]
	if kind == "" {
		kind = EventDeliveryFailed
	}
	detail := d.Kind + " to " + d.Recipient + " via " + d.Provider
	if d.Error != "" {
		detail += ": " + d.Error
	}
	return s.event(tx, d.At, kind, Event{LicenseID: d.LicenseID, Detail: detail})
}

// Deliveries lists the delivery attempts of a license (a key or id), or all.
func (s *Service) Deliveries(ctx context.Context, ref string) ([]Delivery, error) {
	out := []Delivery{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		id, err := s.optionalLicenseID(tx, ref)
		if err != nil {
			return err
		}
		out, err = tx.Deliveries(id)
		return err
	})
	return out, err
}

// DueReminder is a reminder due for a license at one threshold.
type DueReminder struct {
	Reminder
	// ThresholdDays is the threshold reached; for a license in grace, the
	// day of its grace as a negative number (-1 the first day, from its
	// expiry): one reminder a day, each claimed as the thresholds are.
	ThresholdDays int `json:"threshold_days"`
}

// GraceDay is the day of its grace a license expired at expires is in at
// now, from 1 (the first 24 hours after its expiry).
func GraceDay(expires, now time.Time) int {
	return int(now.Sub(expires)/(24*time.Hour)) + 1
}

// Claim is the claim that reserves this reminder.
func (r DueReminder) Claim() ReminderClaim {
	return ReminderClaim{LicenseID: r.LicenseID, ThresholdDays: r.ThresholdDays, ExpiresAt: r.ExpiresAt}
}

// DueReminders returns, for each active license expiring within the
// largest threshold, the nearest threshold it has reached — so a license
// created 5 days before expiry is due one reminder (at 7), not three —
// and for each license in grace the reminder of its grace's day; leaving
// out those already claimed.
func (s *Service) DueReminders(ctx context.Context, thresholds []int) ([]DueReminder, error) {
	if len(thresholds) == 0 {
		return nil, Errorf(CodeBadRequest, "at least one reminder threshold is needed")
	}
	for _, t := range thresholds {
		if err := validateDays("reminder threshold", t); err != nil {
			return nil, err
		}
	}
	sorted := slices.Sorted(slices.Values(thresholds))
	all, err := s.RenewalReminders(ctx, sorted[len(sorted)-1])
	if err != nil {
		return nil, err
	}
	out := []DueReminder{}
	err = s.cfg.Store.View(ctx, func(tx Tx) error {
		now := s.now()
		for _, r := range all {
			due := DueReminder{Reminder: r}
			if r.InGrace {
				// Thresholds are positive: a negative one cannot meet
				// the claim of a reminder before the expiry.
				due.ThresholdDays = -GraceDay(r.ExpiresAt, now)
			} else {
				i := slices.IndexFunc(sorted, func(t int) bool { return r.DaysLeft <= t })
				if i < 0 {
					continue
				}
				due.ThresholdDays = sorted[i]
			}
			claimed, err := tx.ReminderClaimed(r.LicenseID, due.ThresholdDays, r.ExpiresAt)
			if err != nil {
				return err
			}
			if !claimed {
				out = append(out, due)
			}
		}
		return nil
	})
	return out, err
}

// ClaimReminder reserves a reminder before it is sent; false means someone
// (another run, a duplicate event) already holds it and it must not be sent.
func (s *Service) ClaimReminder(ctx context.Context, r DueReminder) (bool, error) {
	claimed := false
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		c := r.Claim()
		c.ClaimedAt = s.now()
		err := tx.InsertReminderClaim(c)
		claimed = err == nil
		if ErrorCode(err) == CodeAlreadyExists {
			return nil
		}
		return err
	})
	return claimed, err
}

// FinishReminder records how a claimed reminder went. A sent reminder keeps
// its claim for good; a failed one releases it, so that a later run retries.
func (s *Service) FinishReminder(ctx context.Context, r DueReminder, d Delivery) error {
	if d.At.IsZero() {
		d.At = s.now()
	}
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		var err error
		if d.Outcome == OutcomeSent {
			err = tx.MarkReminderSent(r.Claim())
		} else {
			err = tx.DeleteReminderClaim(r.Claim())
		}
		if err != nil {
			return err
		}
		return s.recordDelivery(tx, d)
	})
	s.countEmail(d, err)
	return err
}
