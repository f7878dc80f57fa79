package sqlitestore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// InsertLicense implements licensing.Tx.
func (t *Tx) InsertLicense(l licensing.License) error {
	features, err := json.Marshal(l.Features)
	if err != nil {
		return err
	}
	return t.exec(`INSERT INTO licenses (id, customer_id, tier, features, max_instances, max_services,
		max_requests_per_day, issued_at, expires_at, status, recipient, key_id, created_at, updated_at, lease_seconds,
		max_activations_per_day, seat_timeout_seconds, grace_days, overage_percent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.CustomerID, l.Tier, string(features), l.MaxInstances, l.MaxServices, l.MaxRequestsPerDay,
		ts(l.IssuedAt), ts(l.ExpiresAt), string(l.Status), l.Recipient, l.KeyID, ts(l.CreatedAt), ts(l.UpdatedAt), l.LeaseSeconds,
		l.MaxActivationsPerDay, l.SeatTimeoutSeconds, l.GraceDays, l.OveragePercent)
}

// licenseColumns: seats in use depend on the time (leases), so the domain
// counts them (ActiveInstances, SeatCounts).
const licenseColumns = `l.id, l.customer_id, l.tier, l.features, l.max_instances, l.max_services,
	l.max_requests_per_day, l.issued_at, l.expires_at, l.status, l.recipient, l.key_id, l.created_at, l.updated_at,
	l.lease_seconds, l.max_activations_per_day, l.seat_timeout_seconds, l.grace_days, l.overage_percent`

func scanLicense(sc interface{ Scan(...any) error }) (licensing.License, error) {
	var l licensing.License
	var features, issued, expires, status, created, updated string
	err := sc.Scan(&l.ID, &l.CustomerID, &l.Tier, &features, &l.MaxInstances, &l.MaxServices,
		&l.MaxRequestsPerDay, &issued, &expires, &status, &l.Recipient, &l.KeyID, &created, &updated, &l.LeaseSeconds,
		&l.MaxActivationsPerDay, &l.SeatTimeoutSeconds, &l.GraceDays, &l.OveragePercent)
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
	l, err := scanLicense(t.fastRow("SELECT "+licenseColumns+" FROM license_keys k JOIN licenses l ON l.id = k.license_id WHERE k.digest = ?", digest))
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
		issued_at = ?, expires_at = ?, key_id = ?, lease_seconds = ?, max_activations_per_day = ?, seat_timeout_seconds = ?,
		grace_days = ?, overage_percent = ?, updated_at = ? WHERE id = ?`,
		l.Tier, string(features), l.MaxInstances, l.MaxServices, l.MaxRequestsPerDay, ts(l.IssuedAt), ts(l.ExpiresAt), l.KeyID,
		l.LeaseSeconds, l.MaxActivationsPerDay, l.SeatTimeoutSeconds, l.GraceDays, l.OveragePercent, ts(l.UpdatedAt), l.ID)
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
