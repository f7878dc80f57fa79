package sqlitestore

import (
	"database/sql"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// SeatCounts implements licensing.Tx.
func (t *Tx) SeatCounts(now time.Time) (map[string]licensing.SeatCounts, error) {
	rows, err := t.query(seatStates(true), ts(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]licensing.SeatCounts{}
	for rows.Next() {
		var id string
		var c licensing.SeatCounts
		if err := rows.Scan(&id, &c.Live, &c.Offline, &c.Expired, &c.Deactivated, &c.Overage); err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, rows.Err()
}

// SeatTotals implements licensing.Tx.
func (t *Tx) SeatTotals(now time.Time) (licensing.SeatCounts, error) {
	var c licensing.SeatCounts
	err := t.queryRow(seatStates(false), ts(now)).Scan(&c.Live, &c.Offline, &c.Expired, &c.Deactivated, &c.Overage)
	return c, err
}

// LicenseTotals implements licensing.Tx. The effective status is the
// stored one, except that an active license past its expiry is in grace
// until its grace days are over, and expired from then
// (licensing.License.EffectiveStatus).
func (t *Tx) LicenseTotals(now, soon time.Time) ([]licensing.LicenseTotal, error) {
	return queryAll(t, `SELECT tier,
			CASE WHEN status <> 'active' OR expires_at > ?1 THEN status
				WHEN strftime('%Y-%m-%dT%H:%M:%SZ', expires_at, grace_days || ' days') > ?1 THEN 'grace'
				ELSE 'expired' END AS effective,
			count(*),
			count(*) FILTER (WHERE status = 'active' AND expires_at > ?1 AND expires_at < ?2)
		FROM licenses GROUP BY tier, effective ORDER BY tier, effective`, []any{ts(now), ts(soon)},
		func(sc interface{ Scan(...any) error }) (l licensing.LicenseTotal, err error) {
			return l, sc.Scan(&l.Tier, &l.Status, &l.Count, &l.ExpiringSoon)
		})
}

// CustomerCount implements licensing.Tx.
func (t *Tx) CustomerCount() (int, error) {
	var n int
	err := t.queryRow("SELECT count(*) FROM customers").Scan(&n)
	return n, err
}

// ExpiringLicenses implements licensing.Tx.
func (t *Tx) ExpiringLicenses(now, until time.Time) ([]licensing.ExpiringLicense, error) {
	return queryAll(t, `SELECT l.id, l.customer_id, c.name, l.tier, l.expires_at
		FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE l.status = 'active' AND l.expires_at > ? AND l.expires_at <= ?
		ORDER BY l.expires_at, l.id`, []any{ts(now), ts(until)},
		func(sc interface{ Scan(...any) error }) (e licensing.ExpiringLicense, err error) {
			var at string
			err = sc.Scan(&e.LicenseID, &e.CustomerID, &e.CustomerName, &e.Tier, &at)
			e.ExpiresAt = parseTS(at)
			return e, err
		})
}

// CustomerSeats implements licensing.Tx.
func (t *Tx) CustomerSeats(now time.Time) ([]licensing.CustomerSeats, error) {
	return queryAll(t, `WITH `+seatCutoffs+` SELECT c.id, c.name,
			coalesce(sum((SELECT count(*) FROM activations a WHERE a.license_id = l.id AND `+seatTaken+`)), 0),
			coalesce(sum(l.max_instances), 0)
		FROM customers c JOIN licenses l ON l.customer_id = c.id JOIN s ON s.id = l.id
		WHERE l.status = 'active' AND l.expires_at > ?1
		GROUP BY c.id ORDER BY c.id`, []any{ts(now)},
		func(sc interface{ Scan(...any) error }) (c licensing.CustomerSeats, err error) {
			return c, sc.Scan(&c.CustomerID, &c.Name, &c.Used, &c.Max)
		})
}

// EventCountsByDay implements licensing.Tx.
func (t *Tx) EventCountsByDay(since time.Time, kinds map[string]bool) ([]licensing.DayCount, time.Time, error) {
	var oldest sql.NullString
	if err := t.queryRow("SELECT min(at) FROM events").Scan(&oldest); err != nil {
		return nil, time.Time{}, err
	}
	rows, err := t.query(`SELECT substr(at, 1, 10) AS day, kind, count(*) FROM events
		WHERE at >= ? GROUP BY day, kind ORDER BY day, kind`, ts(since))
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rows.Close()
	out := []licensing.DayCount{}
	for rows.Next() {
		var d licensing.DayCount
		if err := rows.Scan(&d.Day, &d.Kind, &d.Count); err != nil {
			return nil, time.Time{}, err
		}
		if kinds[d.Kind] {
			out = append(out, d)
		}
	}
	var first time.Time
	if oldest.Valid {
		first = parseTS(oldest.String)
	}
	return out, first, rows.Err()
}

// DeliveryCounts implements licensing.Tx.
func (t *Tx) DeliveryCounts(since time.Time) ([]licensing.DeliveryCount, error) {
	return queryAll(t, `SELECT kind, outcome, count(*) FROM deliveries WHERE at >= ?
		GROUP BY kind, outcome ORDER BY kind, outcome`, []any{ts(since)},
		func(sc interface{ Scan(...any) error }) (d licensing.DeliveryCount, err error) {
			return d, sc.Scan(&d.Kind, &d.Outcome, &d.Count)
		})
}

// FailedDeliveries implements licensing.Tx.
func (t *Tx) FailedDeliveries(since time.Time, limit int) ([]licensing.Delivery, error) {
	return queryAll(t, "SELECT "+deliveryColumns+" FROM deliveries WHERE at >= ? AND outcome = 'failed' ORDER BY id DESC LIMIT ?",
		[]any{ts(since), limit}, scanDelivery)
}

// AddRefusals implements licensing.Tx.
func (t *Tx) AddRefusals(day string, code licensing.Code, n int) error {
	return t.exec(`INSERT INTO refusal_counts (day, code, count) VALUES (?, ?, ?)
		ON CONFLICT (day, code) DO UPDATE SET count = count + excluded.count`, day, string(code), n)
}

// RefusalCounts implements licensing.Tx.
func (t *Tx) RefusalCounts(since time.Time) ([]licensing.RefusalCount, error) {
	return queryAll(t, "SELECT day, code, count FROM refusal_counts WHERE day >= ? ORDER BY day, code", []any{since.UTC().Format(time.DateOnly)},
		func(sc interface{ Scan(...any) error }) (r licensing.RefusalCount, err error) {
			return r, sc.Scan(&r.Day, &r.Code, &r.Count)
		})
}
