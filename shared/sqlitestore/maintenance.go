package sqlitestore

import (
	"fmt"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// OldRows implements licensing.Tx.
func (t *Tx) OldRows(kind string, before time.Time, limit int) ([]licensing.ArchivedRow, error) {
	args := []any{ts(before), limit}
	switch kind {
	case licensing.ArchiveEvents:
		evs, err := queryAll(t, "SELECT "+eventColumns+" FROM events WHERE at < ? ORDER BY id LIMIT ?", args, scanEvent)
		return archivedRows(evs, func(e licensing.Event) (int64, time.Time) { return e.ID, e.At }), err
	case licensing.ArchiveDeliveries:
		ds, err := queryAll(t, "SELECT "+deliveryColumns+" FROM deliveries WHERE at < ? ORDER BY id LIMIT ?", args, scanDelivery)
		return archivedRows(ds, func(d licensing.Delivery) (int64, time.Time) { return d.ID, d.At }), err
	}
	return nil, fmt.Errorf("sqlitestore: %q is not archivable", kind)
}

func archivedRows[T any](records []T, key func(T) (int64, time.Time)) []licensing.ArchivedRow {
	out := make([]licensing.ArchivedRow, len(records))
	for i, r := range records {
		id, at := key(r)
		out[i] = licensing.ArchivedRow{ID: id, At: at, Record: r}
	}
	return out
}

// DeleteArchived implements licensing.Tx.
func (t *Tx) DeleteArchived(kind string, first, last int64, before time.Time) (int64, error) {
	var table string
	switch kind {
	case licensing.ArchiveEvents:
		table = "events"
	case licensing.ArchiveDeliveries:
		table = "deliveries"
	default:
		return 0, fmt.Errorf("sqlitestore: %q is not archivable", kind)
	}
	return t.execCount("DELETE FROM "+table+" WHERE id BETWEEN ? AND ? AND at < ?", first, last, ts(before))
}

func (t *Tx) execCount(query string, args ...any) (int64, error) {
	res, err := t.execContext(query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// StaleReminderClaims implements licensing.Tx.
func (t *Tx) StaleReminderClaims(before, now time.Time) ([]licensing.ReminderClaim, error) {
	return queryAll(t, `SELECT license_id, threshold_days, expires_at, claimed_at FROM reminder_claims
		WHERE claimed_at < ? AND expires_at < ? ORDER BY claimed_at, rowid`, []any{ts(before), ts(now)},
		func(sc interface{ Scan(...any) error }) (licensing.ReminderClaim, error) {
			var c licensing.ReminderClaim
			var exp, claimed string
			err := sc.Scan(&c.LicenseID, &c.ThresholdDays, &exp, &claimed)
			c.ExpiresAt, c.ClaimedAt = parseTS(exp), parseTS(claimed)
			return c, err
		})
}

// DeleteStaleReminderClaims implements licensing.Tx.
func (t *Tx) DeleteStaleReminderClaims(before, now time.Time) (int64, error) {
	return t.execCount("DELETE FROM reminder_claims WHERE claimed_at < ? AND expires_at < ?", ts(before), ts(now))
}

// PruneActivations implements licensing.Tx.
func (t *Tx) PruneActivations(before time.Time) (int64, error) {
	return t.execCount(`DELETE FROM activations WHERE deactivated_at < ?1
		OR (deactivated_at IS NULL AND lease_expires_at < ?1)`, ts(before))
}

// InsertArchive implements licensing.Tx.
func (t *Tx) InsertArchive(r licensing.ArchiveRecord) error {
	return t.exec(`INSERT INTO archives (name, kind, first_id, last_id, cutoff, count, first_at, last_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Name, r.Kind, r.FirstID, r.LastID, ts(r.Cutoff), r.Count,
		ts(r.FirstAt), ts(r.LastAt), ts(r.CreatedAt))
}

// Archives implements licensing.Tx.
func (t *Tx) Archives(kind string, since time.Time) ([]licensing.ArchiveRecord, error) {
	return queryAll(t, `SELECT name, kind, first_id, last_id, cutoff, count, first_at, last_at, created_at
		FROM archives WHERE kind = ? AND last_at >= ? ORDER BY first_at, rowid`, []any{kind, ts(since)},
		func(sc interface{ Scan(...any) error }) (licensing.ArchiveRecord, error) {
			var r licensing.ArchiveRecord
			var cutoff, first, last, created string
			err := sc.Scan(&r.Name, &r.Kind, &r.FirstID, &r.LastID, &cutoff, &r.Count, &first, &last, &created)
			r.Cutoff, r.FirstAt, r.LastAt, r.CreatedAt = parseTS(cutoff), parseTS(first), parseTS(last), parseTS(created)
			return r, err
		})
}
