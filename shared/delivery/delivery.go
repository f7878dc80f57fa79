// Package delivery emails licenses and renewal reminders through a
// mail.Sender and records every attempt in the database.
package delivery

import (
	"context"
	"errors"
	"log/slog"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
)

// CodeDeliveryFailed: a configured provider could not send (the license,
// if one was generated, stays).
const CodeDeliveryFailed licensing.Code = "DELIVERY_FAILED"

// Deliverer sends and records.
type Deliverer struct {
	svc    *licensing.Service
	sender mail.Sender
	log    *slog.Logger
}

// New returns a Deliverer.
func New(svc *licensing.Service, sender mail.Sender, log *slog.Logger) *Deliverer {
	return &Deliverer{svc: svc, sender: sender, log: log}
}

// Result is how one email went.
type Result struct {
	Status    string `json:"status"` // sent, skipped, failed
	Recipient string `json:"recipient"`
	Provider  string `json:"provider,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Fallback names the provider that failed before the one that sent.
	Fallback string `json:"fallback,omitempty"`
	Detail   string `json:"detail"`
}

// SkippedDetail tells operators how to turn delivery on.
const SkippedDetail = "email delivery skipped: no email provider is configured (set CAIO_SES_SENDER for SES, or CAIO_SMTP_SERVER, CAIO_SMTP_PORT, CAIO_SMTP_USER, CAIO_SMTP_PASSWORD and CAIO_SMTP_SENDER for SMTP)"

// send sends m and turns the outcome into a delivery record.
func (d *Deliverer) send(ctx context.Context, m mail.Message, rec licensing.Delivery) (Result, licensing.Delivery) {
	rec.Recipient = m.To
	receipt, err := d.sender.Send(ctx, m)
	res := Result{Recipient: m.To}
	switch {
	case errors.Is(err, mail.ErrNotConfigured):
		res.Status, res.Detail = licensing.OutcomeSkipped, SkippedDetail
		rec.Provider, rec.Outcome = mail.NoProvider, licensing.OutcomeSkipped
	case err != nil:
		res.Status, res.Provider, res.Detail = licensing.OutcomeFailed, d.sender.Name(), err.Error()
		rec.Provider, rec.Outcome, rec.Error = d.sender.Name(), licensing.OutcomeFailed, err.Error()
	default:
		res.Status, res.Provider, res.MessageID = licensing.OutcomeSent, receipt.Provider, receipt.MessageID
		res.Detail = "sent to " + m.To + " via " + receipt.Provider
		rec.Provider, rec.MessageID, rec.Outcome = receipt.Provider, receipt.MessageID, licensing.OutcomeSent
		if receipt.FallbackFrom != "" {
			res.Fallback = receipt.FallbackFrom
			res.Detail += " (after " + receipt.FallbackFrom + " failed: " + receipt.FallbackError + ")"
			rec.Error = receipt.FallbackFrom + " failed: " + receipt.FallbackError
		}
	}
	return res, rec
}

// License emails a license to a recipient and records the attempt. A
// failure of a configured provider is an error (CodeDeliveryFailed); no
// provider at all is a skipped delivery, not an error.
func (d *Deliverer) License(ctx context.Context, s licensing.Sendable, to string) (Result, error) {
	if err := licensing.ValidateEmail(to); err != nil {
		return Result{}, err
	}
	m, err := licenseMessage(to, s)
	if err != nil {
		return Result{}, err
	}
	res, rec := d.send(ctx, m, licensing.Delivery{LicenseID: s.License.ID, Kind: licensing.DeliveryLicense})
	if err := d.svc.RecordDelivery(ctx, rec); err != nil {
		return res, err
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "license delivery", slog.String("license_id", s.License.ID),
		slog.String("outcome", res.Status), slog.String("provider", res.Provider))
	if res.Status == licensing.OutcomeFailed {
		return res, licensing.Errorf(CodeDeliveryFailed, "license %s is saved, but the email to %s failed: %s; send it again with 'manage-licenses resend-license %s --to %s'", s.License.ID, to, res.Detail, s.License.ID, to)
	}
	return res, nil
}

// Counts summarise a reminders run.
type Counts struct {
	Found   int `json:"found"`
	Sent    int `json:"sent"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
}

// ReminderOutcome is what happened to one due reminder.
type ReminderOutcome struct {
	licensing.DueReminder
	Result Result `json:"result"`
}

// Reminders sends the reminders due at thresholds, each at most once per
// license, threshold and expiry — also when runs overlap or an event is
// delivered twice: a reminder is claimed in the database before it is sent,
// and only the run whose claim lands sends it. A failed send releases the
// claim for a later run; a run that dies between claim and send loses that
// reminder rather than risk sending it twice (at most once).
func (d *Deliverer) Reminders(ctx context.Context, thresholds []int) (Counts, []ReminderOutcome, error) {
	due, err := d.svc.DueReminders(ctx, thresholds)
	if err != nil {
		return Counts{}, nil, err
	}
	c := Counts{Found: len(due)}
	out := []ReminderOutcome{}
	// Skips are attempts too (the guide: every attempt is recorded): they
	// are recorded together at the end, unclaimed, so they stay due.
	var skipped []licensing.Delivery
	skip := func(r licensing.DueReminder, provider, detail string) {
		skipped = append(skipped, licensing.Delivery{LicenseID: r.LicenseID, Kind: licensing.DeliveryReminder, ThresholdDays: r.ThresholdDays,
			Recipient: r.Email, Provider: provider, Outcome: licensing.OutcomeSkipped, Error: detail})
	}
	for _, r := range due {
		o := ReminderOutcome{DueReminder: r}
		switch {
		case r.Email == "":
			o.Result = Result{Status: licensing.OutcomeSkipped, Detail: "no email address for customer " + r.CustomerID}
			c.Skipped++
			skip(r, mail.NoProvider, o.Result.Detail)
		case isNone(d.sender):
			o.Result = Result{Status: licensing.OutcomeSkipped, Recipient: r.Email, Detail: SkippedDetail}
			c.Skipped++
			skip(r, mail.NoProvider, "no email provider is configured")
		default:
			claimed, err := d.svc.ClaimReminder(ctx, r)
			if err != nil {
				return c, out, err
			}
			if !claimed {
				o.Result = Result{Status: licensing.OutcomeSkipped, Recipient: r.Email, Detail: "already sent by another run"}
				c.Skipped++
				break
			}
			o.Result, err = d.sendReminder(ctx, r)
			if err != nil {
				return c, out, err
			}
			if o.Result.Status == licensing.OutcomeSent {
				c.Sent++
			} else {
				c.Failed++
			}
		}
		out = append(out, o)
	}
	if err := d.svc.RecordDeliveries(ctx, skipped); err != nil {
		return c, out, err
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "reminders", slog.Int("found", c.Found), slog.Int("sent", c.Sent),
		slog.Int("skipped", c.Skipped), slog.Int("failed", c.Failed))
	return c, out, nil
}

// isNone reports whether no provider is configured: reminders are then
// skipped without being claimed, so they stay due for a configured run.
func isNone(s mail.Sender) bool { return s.Name() == mail.NoProvider }

func (d *Deliverer) sendReminder(ctx context.Context, r licensing.DueReminder) (Result, error) {
	s := licensing.Sendable{
		Customer: licensing.Customer{ID: r.CustomerID, Name: r.CustomerName},
		License:  licensing.License{ID: r.LicenseID, Tier: r.Tier, ExpiresAt: r.ExpiresAt},
	}
	m, err := reminderMessage(r.Email, s, r.Reminder)
	if err != nil {
		return Result{}, err
	}
	res, rec := d.send(ctx, m, licensing.Delivery{LicenseID: r.LicenseID, Kind: licensing.DeliveryReminder, ThresholdDays: r.ThresholdDays})
	return res, d.svc.FinishReminder(ctx, r, rec)
}
