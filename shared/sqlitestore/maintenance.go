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

// endedSeat is the condition of a seat that ended before ?1: deactivated
// (by its instance: when the lease it was given ended), or its lease ran out.
const endedSeat = `(deactivated_at < ?1 OR (deactivated_at IS NULL AND lease_expires_at < ?1))`

// EndedActivations implements licensing.Tx.
func (t *Tx) EndedActivations(before time.Time, limit int) ([]licensing.Activation, error) {
	return queryAll(t, "SELECT "+activationColumns+` FROM activations a JOIN licenses l ON l.id = a.license_id
		WHERE a.rowid IN (SELECT rowid FROM activations WHERE `+endedSeat+` ORDER BY rowid LIMIT ?2)
		ORDER BY a.rowid`, []any{ts(before), limit}, scanActivation)
}

// DeleteEndedActivations implements licensing.Tx: each seat is deleted
// only as it was read (the same sighting, end and lease), so that a seat
// taken again since stays.
func (t *Tx) DeleteEndedActivations(seats []licensing.Activation, before time.Time) (int64, error) {
	// Prepared once on the transaction's connection: one statement for many rows.
	st, err := t.tx.PrepareContext(t.ctx, `DELETE FROM activations WHERE license_id = ?2 AND instance_id = ?3 AND last_seen = ?4
		AND deactivated_at IS ?5 AND lease_expires_at IS ?6 AND `+endedSeat)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var n int64
	for _, a := range seats {
		res, err := st.ExecContext(t.ctx, ts(before), a.LicenseID, a.InstanceID, ts(a.LastSeen), nullableTS(a.DeactivatedAt), nullableTS(a.LeaseExpiresAt))
		if err != nil {
			return n, err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
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
