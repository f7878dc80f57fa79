package sqlitestore

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// activationColumns: the license's seat timeout comes along, since whether
// the seat is held depends on it (licensing.Activation.SeatEnd).
const activationColumns = `a.license_id, l.customer_id, a.instance_id, a.ip_address, a.first_seen, a.last_seen, a.deactivated_at,
	a.kind, a.lease_issued_at, a.lease_expires_at, a.overage, l.seat_timeout_seconds`

func scanActivation(sc interface{ Scan(...any) error }) (licensing.Activation, error) {
	var a licensing.Activation
	var first, last string
	var deactivated, leaseIssued, leaseExpires sql.NullString
	var timeout int64
	err := sc.Scan(&a.LicenseID, &a.CustomerID, &a.InstanceID, &a.IPAddress, &first, &last, &deactivated,
		&a.Kind, &leaseIssued, &leaseExpires, &a.Overage, &timeout)
	a.SeatTimeout = time.Duration(timeout) * time.Second
	a.FirstSeen, a.LastSeen = parseTS(first), parseTS(last)
	a.DeactivatedAt, a.LeaseIssuedAt, a.LeaseExpiresAt = optionalTS(deactivated), optionalTS(leaseIssued), optionalTS(leaseExpires)
	return a, err
}

// Activation implements licensing.Tx.
func (t *Tx) Activation(licenseID, instanceID string) (licensing.Activation, error) {
	a, err := scanActivation(t.fastRow("SELECT "+activationColumns+
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
	return t.fastExec(`INSERT INTO activations (license_id, instance_id, ip_address, first_seen, last_seen, deactivated_at,
			kind, lease_issued_at, lease_expires_at, overage)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (license_id, instance_id) DO UPDATE SET
			ip_address = excluded.ip_address, last_seen = excluded.last_seen, deactivated_at = excluded.deactivated_at,
			kind = excluded.kind, lease_issued_at = excluded.lease_issued_at, lease_expires_at = excluded.lease_expires_at,
			overage = excluded.overage`,
		a.LicenseID, a.InstanceID, a.IPAddress, ts(a.FirstSeen), ts(a.LastSeen), nullableTS(a.DeactivatedAt),
		kind, nullableTS(a.LeaseIssuedAt), nullableTS(a.LeaseExpiresAt), a.Overage)
}

// ActiveInstances implements licensing.Tx: seats whose lease runs past now
// and, online under a seat timeout, was issued after now - seatTimeout;
// those given back by their instance included (deactivated_at is then when
// the seat is free, after now; see licensing.Activation.Occupies). Two
// counts, so that each reads a covering partial index alone: the live
// seats activations_live, those given back but still taken
// activations_releasing (schema 10; before it, that count read every
// activation row of the license). Every first activation counts every seat
// of its license, so the count is kept to what decides: without a seat
// timeout a seat ends when its lease does, whatever its issue time
// (licensing.Activation.SeatEnd), and the query that leaves the issue time
// out tests one thing per seat instead of three.
func (t *Tx) ActiveInstances(licenseID string, now time.Time, seatTimeout time.Duration) (int, error) {
	var n int
	if seatTimeout <= 0 {
		err := t.fastRow(activeInstancesNoTimeoutQuery, licenseID, ts(now)).Scan(&n)
		return n, err
	}
	err := t.fastRow(activeInstancesQuery, licenseID, ts(now), ts(now.Add(-seatTimeout))).Scan(&n)
	return n, err
}

// OverageInstances implements licensing.Tx: of the seats ActiveInstances
// counts, those above the license's max instances (taken under its
// overage allowance). Asked only of licenses that have one.
func (t *Tx) OverageInstances(licenseID string, now time.Time, seatTimeout time.Duration) (int, error) {
	renewedAfter := ""
	if seatTimeout > 0 {
		renewedAfter = ts(now.Add(-seatTimeout))
	}
	var n int
	err := t.queryRow(`SELECT count(*) FROM activations a WHERE a.license_id = ?2 AND a.overage = 1 AND `+seatTakenByCutoff,
		ts(now), licenseID, renewedAfter).Scan(&n)
	return n, err
}

// seatTakenByCutoff is seatTaken for one license, its cut-off given as ?3
// rather than read from seatCutoffs: the same rule, written once.
var seatTakenByCutoff = strings.Replace(seatTaken, "s.renewed_after", "?3", 1)

const activeInstancesQuery = `SELECT
		(SELECT count(*) FROM activations WHERE license_id = ?1 AND deactivated_at IS NULL AND lease_expires_at > ?2
			AND (kind = 'offline' OR lease_issued_at > ?3)) +
		(SELECT count(*) FROM activations WHERE license_id = ?1 AND deactivated_at > ?2 AND lease_expires_at > ?2
			AND (kind = 'offline' OR lease_issued_at > ?3))`

const activeInstancesNoTimeoutQuery = `SELECT
		(SELECT count(*) FROM activations WHERE license_id = ?1 AND deactivated_at IS NULL AND lease_expires_at > ?2) +
		(SELECT count(*) FROM activations WHERE license_id = ?1 AND deactivated_at > ?2 AND lease_expires_at > ?2)`

// seatCutoffs is a common table expression, s(id, renewed_after): for
// each license, the issue time an online lease must be after for its seat
// to be held at ?1 under the license's seat timeout (without one, the
// empty string: any time), worked out once per license rather than once
// per activation; in license id order, so that counts per license need no
// sort.
const seatCutoffs = `s(id, renewed_after) AS MATERIALIZED (SELECT id, CASE seat_timeout_seconds WHEN 0 THEN ''
	ELSE strftime('%Y-%m-%dT%H:%M:%SZ', ?1, -seat_timeout_seconds || ' seconds') END FROM licenses ORDER BY id)`

// seatUnexpired is, in SQL, an activation a (of the license s of
// seatCutoffs) whose seat is not yet free at ?1 (licensing.Activation.SeatEnd
// after ?1): its lease runs past ?1 and, online, was issued after
// s.renewed_after. NULL (false, to FILTER) without a lease.
const seatUnexpired = `a.lease_expires_at > ?1 AND (a.kind = 'offline' OR a.lease_issued_at > s.renewed_after)`

// seatTaken is an activation taking up a seat at ?1 (live or releasing;
// licensing.Activation.Occupies).
const seatTaken = `(a.deactivated_at IS NULL OR a.deactivated_at > ?1) AND ` + seatUnexpired

// seatStates counts activations a (with s, seatCutoffs) by state at ?1, as
// licensing.Activation.State puts them, in the columns of licensing.SeatCounts:
// live (taken: held, or releasing), offline (the live ones on an offline
// lease), expired (free: the lease ran out or the seat timed out),
// deactivated (given back, no longer taken), and overage (the live ones
// above max instances). Whether a seat timed out is
// worked out about once per activation, the rest by subtraction: it is
// most of the cost of counting. Per license, the license id comes first.
func seatStates(perLicense bool) string {
	id, group := "", ""
	if perLicense {
		id, group = "license_id, ", "s.id AS license_id, "
	}
	q := `WITH ` + seatCutoffs + ` SELECT ` + id + `held + releasing, offline, not_given_back - held, total - not_given_back - releasing, overage
		FROM (SELECT ` + group + `
		count(*) FILTER (WHERE a.deactivated_at IS NULL AND ` + seatUnexpired + `) AS held,
		count(*) FILTER (WHERE a.deactivated_at > ?1 AND ` + seatUnexpired + `) AS releasing,
		count(*) FILTER (WHERE a.kind = 'offline' AND ` + seatTaken + `) AS offline,
		count(*) FILTER (WHERE a.overage = 1 AND ` + seatTaken + `) AS overage,
		count(*) FILTER (WHERE a.deactivated_at IS NULL) AS not_given_back,
		count(*) AS total
		FROM s CROSS JOIN activations a ON a.license_id = s.id`
	if perLicense {
		q += " GROUP BY s.id"
	}
	return q + ")"
}

// SeatGrants implements licensing.Tx. Every first activation counts its
// license's grants of the last day, so the count and the oldest are
// subqueries of their own: count(*) alone steps through the index entries
// doing nothing else, and min(at) alone is one seek (SQLite's min
// optimisation), where one query computing both compared every entry's
// time as it counted. A third seek finds the license's oldest grant of
// all, for AddSeatGrant (see grantsRead).
func (t *Tx) SeatGrants(licenseID string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest, oldestOfAll sql.NullString
	err := t.fastRow(`SELECT (SELECT count(*) FROM seat_grants WHERE license_id = ?1 AND at > ?2),
		(SELECT min(at) FROM seat_grants WHERE license_id = ?1 AND at > ?2),
		(SELECT min(at) FROM seat_grants WHERE license_id = ?1)`, licenseID, ts(since)).Scan(&n, &oldest, &oldestOfAll)
	if err == nil {
		t.grants = grantsRead{licenseID: licenseID, oldest: oldestOfAll.String, read: true}
	}
	return n, parseTS(oldest.String), err
}

// grantsRead is what SeatGrants found of a license's grants, in this
// transaction: the oldest grant's time ("" when it has none).
type grantsRead struct {
	licenseID, oldest string
	read              bool
}

// AddSeatGrant implements licensing.Tx; grants before prune are removed.
//
// A prune deletes nothing when the license has no grant at or before
// prune. SeatGrants, which a first activation calls just before, reads the
// license's oldest grant; when that is after prune (or there is none) the
// DELETE, one statement of a first activation's ten, is skipped. That is
// exact: a write transaction holds the database's write lock from its
// start (BEGIN IMMEDIATE; the S3 working copy has one connection), so no
// other writer has added a grant since, and in this transaction only
// AddSeatGrant writes seat_grants, and it forgets what was read.
func (t *Tx) AddSeatGrant(licenseID string, at, prune time.Time) error {
	read := t.grants
	t.grants = grantsRead{}
	if !read.read || read.licenseID != licenseID || (read.oldest != "" && read.oldest <= ts(prune)) {
		if err := t.fastExec("DELETE FROM seat_grants WHERE license_id = ? AND at <= ?", licenseID, ts(prune)); err != nil {
			return err
		}
	}
	return t.fastExec("INSERT INTO seat_grants (license_id, at) VALUES (?, ?)", licenseID, ts(at))
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
