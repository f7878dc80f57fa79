package sqlitestore

import (
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// InsertDelivery implements licensing.Tx.
func (t *Tx) InsertDelivery(d licensing.Delivery) error {
	return t.exec(`INSERT INTO deliveries (license_id, kind, threshold_days, recipient, provider, message_id, at, outcome, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.LicenseID, d.Kind, d.ThresholdDays, d.Recipient, d.Provider, d.MessageID, ts(d.At), d.Outcome, d.Error)
}

// Deliveries implements licensing.Tx.
func (t *Tx) Deliveries(licenseID string) ([]licensing.Delivery, error) {
	q := "SELECT " + deliveryColumns + " FROM deliveries"
	var args []any
	if licenseID != "" {
		q, args = q+" WHERE license_id = ?", []any{licenseID}
	}
	return queryAll(t, q+" ORDER BY id", args, scanDelivery)
}

const deliveryColumns = "id, license_id, kind, threshold_days, recipient, provider, message_id, at, outcome, error"

func scanDelivery(sc interface{ Scan(...any) error }) (licensing.Delivery, error) {
	var d licensing.Delivery
	var at string
	err := sc.Scan(&d.ID, &d.LicenseID, &d.Kind, &d.ThresholdDays, &d.Recipient, &d.Provider, &d.MessageID, &at, &d.Outcome, &d.Error)
	d.At = parseTS(at)
	return d, err
}

// InsertReminderClaim implements licensing.Tx.
func (t *Tx) InsertReminderClaim(c licensing.ReminderClaim) error {
	return t.exec("INSERT INTO reminder_claims (license_id, threshold_days, expires_at, claimed_at, state) VALUES (?, ?, ?, ?, 'claimed')",
		c.LicenseID, c.ThresholdDays, ts(c.ExpiresAt), ts(c.ClaimedAt))
}

// ReminderClaimed implements licensing.Tx.
func (t *Tx) ReminderClaimed(licenseID string, thresholdDays int, expiresAt time.Time) (bool, error) {
	var n int
	err := t.queryRow("SELECT count(*) FROM reminder_claims WHERE license_id = ? AND threshold_days = ? AND expires_at = ?",
		licenseID, thresholdDays, ts(expiresAt)).Scan(&n)
	return n > 0, err
}

// MarkReminderSent implements licensing.Tx.
func (t *Tx) MarkReminderSent(c licensing.ReminderClaim) error {
	return t.exec("UPDATE reminder_claims SET state = 'sent' WHERE license_id = ? AND threshold_days = ? AND expires_at = ?",
		c.LicenseID, c.ThresholdDays, ts(c.ExpiresAt))
}

// DeleteReminderClaim implements licensing.Tx.
func (t *Tx) DeleteReminderClaim(c licensing.ReminderClaim) error {
	return t.exec("DELETE FROM reminder_claims WHERE license_id = ? AND threshold_days = ? AND expires_at = ?",
		c.LicenseID, c.ThresholdDays, ts(c.ExpiresAt))
}
