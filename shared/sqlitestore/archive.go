package sqlitestore

import (
	"fmt"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The tables that archives may empty, and how to read their rows.
var archivable = map[string]string{
	licensing.ArchiveEvents:     "events",
	licensing.ArchiveDeliveries: "deliveries",
}

// OldRows implements licensing.Tx.
func (t *Tx) OldRows(kind string, before time.Time, limit int) ([]licensing.ArchivedRow, error) {
	table, ok := archivable[kind]
	if !ok {
		return nil, fmt.Errorf("sqlitestore: %q is not archivable", kind)
	}
	if table == "events" {
		evs, err := queryAll(t, "SELECT "+eventColumns+" FROM events WHERE at < ? ORDER BY id LIMIT ?", []any{ts(before), limit}, scanEvent)
		out := make([]licensing.ArchivedRow, len(evs))
		for i, e := range evs {
			out[i] = licensing.ArchivedRow{ID: e.ID, At: e.At, Record: e}
		}
		return out, err
	}
	ds, err := queryAll(t, "SELECT "+deliveryColumns+" FROM deliveries WHERE at < ? ORDER BY id LIMIT ?", []any{ts(before), limit}, scanDelivery)
	out := make([]licensing.ArchivedRow, len(ds))
	for i, d := range ds {
		out[i] = licensing.ArchivedRow{ID: d.ID, At: d.At, Record: d}
	}
	return out, err
}

// DeleteArchived implements licensing.Tx.
func (t *Tx) DeleteArchived(kind string, first, last int64, before time.Time) (int64, error) {
	table, ok := archivable[kind]
	if !ok {
		return 0, fmt.Errorf("sqlitestore: %q is not archivable", kind)
	}
	res, err := t.tx.ExecContext(t.ctx, "DELETE FROM "+table+" WHERE id BETWEEN ? AND ? AND at < ?", first, last, ts(before))
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
	res, err := t.tx.ExecContext(t.ctx, "DELETE FROM reminder_claims WHERE claimed_at < ? AND expires_at < ?", ts(before), ts(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PruneActivations implements licensing.Tx.
func (t *Tx) PruneActivations(before time.Time) (int64, error) {
	res, err := t.tx.ExecContext(t.ctx, `DELETE FROM activations WHERE deactivated_at < ?1
		OR (deactivated_at IS NULL AND lease_expires_at < ?1)`, ts(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
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
