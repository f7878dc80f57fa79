package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Tx is a licensing.Tx on one SQLite transaction.
type Tx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *stmtCache
}

var _ licensing.Tx = (*Tx)(nil)

// timeFormat is RFC 3339 in UTC at second precision: fixed width, so text
// order is time order.
const timeFormat = "2006-01-02T15:04:05Z"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

func notFound(what string) error {
	return licensing.Errorf(licensing.CodeNotFound, "%s not found", what)
}

func (t *Tx) exec(query string, args ...any) error {
	_, err := t.execContext(query, args...)
	if errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY) || errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		return licensing.Wrap(licensing.CodeAlreadyExists, err, "already exists")
	}
	return err
}

// changes counts the rows this connection has changed so far.
func (t *Tx) changes() (int64, error) {
	var n int64
	err := t.queryRow("SELECT total_changes()").Scan(&n)
	return n, err
}

// Setting implements licensing.Tx.
func (t *Tx) Setting(name string) ([]byte, error) {
	var v []byte
	err := t.queryRow("SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// PutSetting implements licensing.Tx.
func (t *Tx) PutSetting(name string, value []byte) error {
	return t.exec("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, value)
}

// SigningKeys implements licensing.Tx.
func (t *Tx) SigningKeys() ([]licensing.SigningKey, error) {
	rows, err := t.query("SELECT key_id, public_key, sealed_private_key, created_at FROM signing_keys ORDER BY created_at, rowid")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []licensing.SigningKey
	for rows.Next() {
		var k licensing.SigningKey
		var created string
		if err := rows.Scan(&k.KeyID, &k.PublicKey, &k.SealedPrivateKey, &created); err != nil {
			return nil, err
		}
		k.CreatedAt = parseTS(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

// InsertSigningKey implements licensing.Tx.
func (t *Tx) InsertSigningKey(k licensing.SigningKey) error {
	return t.exec("INSERT INTO signing_keys (key_id, public_key, sealed_private_key, created_at) VALUES (?, ?, ?, ?)",
		k.KeyID, k.PublicKey, k.SealedPrivateKey, ts(k.CreatedAt))
}

// ResealSigningKey implements licensing.Tx.
func (t *Tx) ResealSigningKey(keyID string, sealed []byte) error {
	return t.exec("UPDATE signing_keys SET sealed_private_key = ? WHERE key_id = ?", sealed, keyID)
}

// InsertCustomer implements licensing.Tx.
func (t *Tx) InsertCustomer(c licensing.Customer) error {
	return t.exec("INSERT INTO customers (id, name, email, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
		c.ID, c.Name, c.Email, ts(c.CreatedAt), ts(c.UpdatedAt))
}

const customerColumns = "id, name, email, created_at, updated_at"

func scanCustomer(sc interface{ Scan(...any) error }) (licensing.Customer, error) {
	var c licensing.Customer
	var created, updated string
	err := sc.Scan(&c.ID, &c.Name, &c.Email, &created, &updated)
	c.CreatedAt, c.UpdatedAt = parseTS(created), parseTS(updated)
	return c, err
}

// Customer implements licensing.Tx.
func (t *Tx) Customer(id string) (licensing.Customer, error) {
	c, err := scanCustomer(t.queryRow("SELECT "+customerColumns+" FROM customers WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound("customer " + id)
	}
	return c, err
}

// UpdateCustomer implements licensing.Tx.
func (t *Tx) UpdateCustomer(c licensing.Customer) error {
	return t.exec("UPDATE customers SET name = ?, email = ?, updated_at = ? WHERE id = ?", c.Name, c.Email, ts(c.UpdatedAt), c.ID)
}

// Customers implements licensing.Tx.
func (t *Tx) Customers() ([]licensing.Customer, error) {
	return queryAll(t, "SELECT "+customerColumns+" FROM customers ORDER BY id", nil, scanCustomer)
}

func queryAll[T any](t *Tx, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// InsertLicense implements licensing.Tx.
func (t *Tx) InsertLicense(l licensing.License) error {
	features, err := json.Marshal(l.Features)
	if err != nil {
		return err
	}
	return t.exec(`INSERT INTO licenses (id, customer_id, tier, features, max_instances, max_services,
		max_requests_per_day, issued_at, expires_at, status, recipient, key_id, created_at, updated_at, lease_seconds,
		max_activations_per_day)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.CustomerID, l.Tier, string(features), l.MaxInstances, l.MaxServices, l.MaxRequestsPerDay,
		ts(l.IssuedAt), ts(l.ExpiresAt), string(l.Status), l.Recipient, l.KeyID, ts(l.CreatedAt), ts(l.UpdatedAt), l.LeaseSeconds,
		l.MaxActivationsPerDay)
}

// licenseColumns: seats in use depend on the time (leases), so the domain
// counts them (ActiveInstances, SeatCounts).
const licenseColumns = `l.id, l.customer_id, l.tier, l.features, l.max_instances, l.max_services,
	l.max_requests_per_day, l.issued_at, l.expires_at, l.status, l.recipient, l.key_id, l.created_at, l.updated_at,
	l.lease_seconds, l.max_activations_per_day`

func scanLicense(sc interface{ Scan(...any) error }) (licensing.License, error) {
	var l licensing.License
	var features, issued, expires, status, created, updated string
	err := sc.Scan(&l.ID, &l.CustomerID, &l.Tier, &features, &l.MaxInstances, &l.MaxServices,
		&l.MaxRequestsPerDay, &issued, &expires, &status, &l.Recipient, &l.KeyID, &created, &updated, &l.LeaseSeconds,
		&l.MaxActivationsPerDay)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal([]byte(features), &l.Features); err != nil {
		return l, err
	}
	l.IssuedAt, l.ExpiresAt, l.CreatedAt, l.UpdatedAt = parseTS(issued), parseTS(expires), parseTS(created), parseTS(updated)
	l.Status = licensing.Status(status)
	return l, nil
}

// License implements licensing.Tx.
func (t *Tx) License(id string) (licensing.License, error) {
	l, err := scanLicense(t.queryRow("SELECT "+licenseColumns+" FROM licenses l WHERE l.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return l, notFound("license " + id)
	}
	return l, err
}

// LicenseKeys implements licensing.Tx.
func (t *Tx) LicenseKeys(licenseID string) ([]licensing.LicenseKey, error) {
	return queryAll(t, "SELECT digest, license_id, sealed_key, issued_at, expires_at FROM license_keys WHERE license_id = ? ORDER BY issued_at, digest",
		[]any{licenseID}, scanLicenseKey)
}

// LicenseByKeyDigest implements licensing.Tx: one query where a key check
// would otherwise make two.
func (t *Tx) LicenseByKeyDigest(digest string) (licensing.License, error) {
	l, err := scanLicense(t.queryRow("SELECT "+licenseColumns+" FROM license_keys k JOIN licenses l ON l.id = k.license_id WHERE k.digest = ?", digest))
	if errors.Is(err, sql.ErrNoRows) {
		return l, notFound("license key")
	}
	return l, err
}

// UpdateLicense implements licensing.Tx: expiry, status and key. Identity
// and customer are fixed once issued; terms change through UpdateTerms.
func (t *Tx) UpdateLicense(l licensing.License) error {
	return t.exec("UPDATE licenses SET issued_at = ?, expires_at = ?, status = ?, key_id = ?, updated_at = ? WHERE id = ?",
		ts(l.IssuedAt), ts(l.ExpiresAt), string(l.Status), l.KeyID, ts(l.UpdatedAt), l.ID)
}

// UpdateTerms implements licensing.Tx.
func (t *Tx) UpdateTerms(l licensing.License) error {
	features, err := json.Marshal(l.Features)
	if err != nil {
		return err
	}
	return t.exec(`UPDATE licenses SET tier = ?, features = ?, max_instances = ?, max_services = ?, max_requests_per_day = ?,
		issued_at = ?, expires_at = ?, key_id = ?, lease_seconds = ?, max_activations_per_day = ?, updated_at = ? WHERE id = ?`,
		l.Tier, string(features), l.MaxInstances, l.MaxServices, l.MaxRequestsPerDay, ts(l.IssuedAt), ts(l.ExpiresAt), l.KeyID,
		l.LeaseSeconds, l.MaxActivationsPerDay, ts(l.UpdatedAt), l.ID)
}

// Licenses implements licensing.Tx.
func (t *Tx) Licenses(f licensing.LicenseFilter) ([]licensing.License, error) {
	var where []string
	var args []any
	if f.CustomerID != "" {
		where, args = append(where, "l.customer_id = ?"), append(args, f.CustomerID)
	}
	if f.Status != "" {
		where, args = append(where, "l.status = ?"), append(args, string(f.Status))
	}
	if f.IDPrefix != "" {
		// A range on the primary key, not LIKE: ids are lower-case hex.
		where, args = append(where, "l.id >= ? AND l.id < ?"), append(args, f.IDPrefix, f.IDPrefix+"g")
	}
	if !f.ExpiresBefore.IsZero() {
		where, args = append(where, "l.expires_at < ?"), append(args, ts(f.ExpiresBefore))
	}
	q := "SELECT " + licenseColumns + " FROM licenses l"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return queryAll(t, q+" ORDER BY l.created_at, l.rowid", args, scanLicense)
}

// InsertLicenseKey implements licensing.Tx.
func (t *Tx) InsertLicenseKey(k licensing.LicenseKey) error {
	return t.exec("INSERT INTO license_keys (digest, license_id, sealed_key, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		k.Digest, k.LicenseID, k.Sealed, ts(k.IssuedAt), ts(k.ExpiresAt))
}

func scanLicenseKey(sc interface{ Scan(...any) error }) (licensing.LicenseKey, error) {
	var k licensing.LicenseKey
	var issued, expires string
	err := sc.Scan(&k.Digest, &k.LicenseID, &k.Sealed, &issued, &expires)
	k.IssuedAt, k.ExpiresAt = parseTS(issued), parseTS(expires)
	return k, err
}

// LicenseKey implements licensing.Tx.
func (t *Tx) LicenseKey(digest string) (licensing.LicenseKey, error) {
	k, err := scanLicenseKey(t.queryRow(
		"SELECT digest, license_id, sealed_key, issued_at, expires_at FROM license_keys WHERE digest = ?", digest))
	if errors.Is(err, sql.ErrNoRows) {
		return k, notFound("license key")
	}
	return k, err
}

// LatestLicenseKey implements licensing.Tx.
func (t *Tx) LatestLicenseKey(licenseID string) (licensing.LicenseKey, error) {
	k, err := scanLicenseKey(t.queryRow(
		`SELECT digest, license_id, sealed_key, issued_at, expires_at FROM license_keys
		WHERE license_id = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1`, licenseID))
	if errors.Is(err, sql.ErrNoRows) {
		return k, notFound("key of license " + licenseID)
	}
	return k, err
}

// AllLicenseKeys implements licensing.Tx.
func (t *Tx) AllLicenseKeys() ([]licensing.LicenseKey, error) {
	return queryAll(t, "SELECT digest, license_id, sealed_key, issued_at, expires_at FROM license_keys ORDER BY rowid", nil, scanLicenseKey)
}

// ResealLicenseKey implements licensing.Tx.
func (t *Tx) ResealLicenseKey(digest string, sealed []byte) error {
	return t.exec("UPDATE license_keys SET sealed_key = ? WHERE digest = ?", sealed, digest)
}

const activationColumns = `a.license_id, l.customer_id, a.instance_id, a.ip_address, a.first_seen, a.last_seen, a.deactivated_at,
	a.kind, a.lease_issued_at, a.lease_expires_at`

func optionalTS(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTS(s.String)
	return &t
}

func nullableTS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func scanActivation(sc interface{ Scan(...any) error }) (licensing.Activation, error) {
	var a licensing.Activation
	var first, last string
	var deactivated, leaseIssued, leaseExpires sql.NullString
	err := sc.Scan(&a.LicenseID, &a.CustomerID, &a.InstanceID, &a.IPAddress, &first, &last, &deactivated,
		&a.Kind, &leaseIssued, &leaseExpires)
	a.FirstSeen, a.LastSeen = parseTS(first), parseTS(last)
	a.DeactivatedAt, a.LeaseIssuedAt, a.LeaseExpiresAt = optionalTS(deactivated), optionalTS(leaseIssued), optionalTS(leaseExpires)
	return a, err
}

// Activation implements licensing.Tx.
func (t *Tx) Activation(licenseID, instanceID string) (licensing.Activation, error) {
	a, err := scanActivation(t.queryRow("SELECT "+activationColumns+
		" FROM activations a JOIN licenses l ON l.id = a.license_id WHERE a.license_id = ? AND a.instance_id = ?", licenseID, instanceID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFound("activation")
	}
	return a, err
}

// PutActivation implements licensing.Tx.
func (t *Tx) PutActivation(a licensing.Activation) error {
	kind := a.Kind
	if kind == "" {
		kind = licensing.KindOnline
	}
	return t.exec(`INSERT INTO activations (license_id, instance_id, ip_address, first_seen, last_seen, deactivated_at,
			kind, lease_issued_at, lease_expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (license_id, instance_id) DO UPDATE SET
			ip_address = excluded.ip_address, last_seen = excluded.last_seen, deactivated_at = excluded.deactivated_at,
			kind = excluded.kind, lease_issued_at = excluded.lease_issued_at, lease_expires_at = excluded.lease_expires_at`,
		a.LicenseID, a.InstanceID, a.IPAddress, ts(a.FirstSeen), ts(a.LastSeen), nullableTS(a.DeactivatedAt),
		kind, nullableTS(a.LeaseIssuedAt), nullableTS(a.LeaseExpiresAt))
}

// ActiveInstances implements licensing.Tx: seats whose lease runs past
// now, those given back by their instance included (deactivated_at is then
// the lease's end, after now; see licensing.Activation.Occupies). Two
// counts, so that the first keeps its covering partial index.
func (t *Tx) ActiveInstances(licenseID string, now time.Time) (int, error) {
	var n int
	err := t.queryRow(`SELECT
		(SELECT count(*) FROM activations WHERE license_id = ?1 AND deactivated_at IS NULL AND lease_expires_at > ?2) +
		(SELECT count(*) FROM activations WHERE license_id = ?1 AND deactivated_at > ?2 AND lease_expires_at > ?2)`, licenseID, ts(now)).Scan(&n)
	return n, err
}

// SeatCounts implements licensing.Tx.
func (t *Tx) SeatCounts(now time.Time) (map[string]licensing.SeatCounts, error) {
	rows, err := t.query(`SELECT license_id,
			count(*) FILTER (WHERE (deactivated_at IS NULL OR deactivated_at > ?1) AND lease_expires_at > ?1),
			count(*) FILTER (WHERE deactivated_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at <= ?1)),
			count(*) FILTER (WHERE deactivated_at <= ?1),
			count(*) FILTER (WHERE (deactivated_at IS NULL OR deactivated_at > ?1) AND lease_expires_at > ?1 AND kind = 'offline')
		FROM activations GROUP BY license_id`, ts(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]licensing.SeatCounts{}
	for rows.Next() {
		var id string
		var c licensing.SeatCounts
		if err := rows.Scan(&id, &c.Live, &c.Expired, &c.Deactivated, &c.Offline); err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, rows.Err()
}

// SeatTotals implements licensing.Tx.
func (t *Tx) SeatTotals(now time.Time) (licensing.SeatCounts, error) {
	var c licensing.SeatCounts
	err := t.queryRow(`SELECT
			count(*) FILTER (WHERE (deactivated_at IS NULL OR deactivated_at > ?1) AND lease_expires_at > ?1),
			count(*) FILTER (WHERE deactivated_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at <= ?1)),
			count(*) FILTER (WHERE deactivated_at <= ?1),
			count(*) FILTER (WHERE (deactivated_at IS NULL OR deactivated_at > ?1) AND lease_expires_at > ?1 AND kind = 'offline')
		FROM activations`, ts(now)).Scan(&c.Live, &c.Expired, &c.Deactivated, &c.Offline)
	return c, err
}

// LicenseTotals implements licensing.Tx. The effective status is the
// stored one, except that an active license past its expiry is expired.
func (t *Tx) LicenseTotals(now, soon time.Time) ([]licensing.LicenseTotal, error) {
	return queryAll(t, `SELECT tier,
			CASE WHEN status = 'active' AND expires_at <= ?1 THEN 'expired' ELSE status END AS effective,
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

// SeatGrants implements licensing.Tx.
func (t *Tx) SeatGrants(licenseID string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest sql.NullString
	err := t.queryRow("SELECT count(*), min(at) FROM seat_grants WHERE license_id = ? AND at > ?", licenseID, ts(since)).Scan(&n, &oldest)
	return n, parseTS(oldest.String), err
}

// AddSeatGrant implements licensing.Tx; grants before prune are removed.
func (t *Tx) AddSeatGrant(licenseID string, at, prune time.Time) error {
	if err := t.exec("DELETE FROM seat_grants WHERE license_id = ? AND at <= ?", licenseID, ts(prune)); err != nil {
		return err
	}
	return t.exec("INSERT INTO seat_grants (license_id, at) VALUES (?, ?)", licenseID, ts(at))
}

// InsertServerCertificate implements licensing.Tx.
func (t *Tx) InsertServerCertificate(c licensing.ServerCertificate) error {
	return t.exec(`INSERT INTO server_certificates (key_id, public_key, certificate, not_before, not_after, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.KeyID, c.PublicKey, c.Certificate, ts(c.NotBefore), ts(c.NotAfter), ts(c.CreatedAt))
}

// DeleteServerCertificates implements licensing.Tx.
func (t *Tx) DeleteServerCertificates(keyID string) error {
	return t.exec("DELETE FROM server_certificates WHERE key_id = ?", keyID)
}

// ServerCertificates implements licensing.Tx.
func (t *Tx) ServerCertificates() ([]licensing.ServerCertificate, error) {
	return queryAll(t, `SELECT key_id, public_key, certificate, not_before, not_after, created_at
		FROM server_certificates ORDER BY created_at, rowid`, nil, func(sc interface{ Scan(...any) error }) (licensing.ServerCertificate, error) {
		var c licensing.ServerCertificate
		var nb, na, created string
		err := sc.Scan(&c.KeyID, &c.PublicKey, &c.Certificate, &nb, &na, &created)
		c.NotBefore, c.NotAfter, c.CreatedAt = parseTS(nb), parseTS(na), parseTS(created)
		return c, err
	})
}

// Activations implements licensing.Tx.
func (t *Tx) Activations(licenseID string) ([]licensing.Activation, error) {
	q := "SELECT " + activationColumns + " FROM activations a JOIN licenses l ON l.id = a.license_id"
	var args []any
	if licenseID != "" {
		q, args = q+" WHERE a.license_id = ?", []any{licenseID}
	}
	return queryAll(t, q+" ORDER BY a.first_seen, a.rowid", args, scanActivation)
}

// AppendEvent implements licensing.Tx.
func (t *Tx) AppendEvent(e licensing.Event) error {
	return t.exec("INSERT INTO events (at, kind, actor, customer_id, license_id, instance_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
		ts(e.At), e.Kind, e.Actor, e.CustomerID, e.LicenseID, e.InstanceID, e.Detail)
}

// Events implements licensing.Tx.
func (t *Tx) Events(f licensing.EventFilter) ([]licensing.Event, error) {
	var where []string
	var args []any
	if f.LicenseID != "" {
		where, args = append(where, "license_id = ?"), append(args, f.LicenseID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, ts(f.Since))
	}
	q := "SELECT " + eventColumns + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return queryAll(t, q+" ORDER BY id", args, scanEvent)
}

const eventColumns = "id, at, kind, actor, customer_id, license_id, instance_id, detail"

func scanEvent(sc interface{ Scan(...any) error }) (licensing.Event, error) {
	var e licensing.Event
	var at string
	err := sc.Scan(&e.ID, &at, &e.Kind, &e.Actor, &e.CustomerID, &e.LicenseID, &e.InstanceID, &e.Detail)
	e.At = parseTS(at)
	return e, err
}

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
	return queryAll(t, `SELECT c.id, c.name,
			coalesce(sum((SELECT count(*) FROM activations a WHERE a.license_id = l.id
				AND (a.deactivated_at IS NULL OR a.deactivated_at > ?1) AND a.lease_expires_at > ?1)), 0),
			coalesce(sum(l.max_instances), 0)
		FROM customers c JOIN licenses l ON l.customer_id = c.id
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
