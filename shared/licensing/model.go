// Package licensing is the domain: customers, licenses, keys, seats and the
// event log. It depends on no AWS package, SQL driver or transport; storage
// sits behind the Store interface.
package licensing

import (
	"encoding/json"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// Status is a license's state. Grace and expired are derived from the
// expiry time (and the grace days) and never stored.
type Status string

// License statuses.
const (
	StatusActive Status = "active"
	// StatusGrace: an active license past its expiry, within its grace
	// days; it keeps working, with warnings.
	StatusGrace     Status = "grace"
	StatusExpired   Status = "expired"
	StatusSuspended Status = "suspended"
	StatusRevoked   Status = "revoked"
)

// Customer is a licensee.
type Customer struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// License is the database's record of a license: the online authority on
// status and expiry.
type License struct {
	ID                string    `json:"license_id"`
	CustomerID        string    `json:"customer_id"`
	Tier              string    `json:"tier"`
	Features          []string  `json:"features"`
	MaxInstances      uint32    `json:"max_instances"`
	MaxServices       uint32    `json:"max_services"`
	MaxRequestsPerDay uint32    `json:"max_requests_per_day"`
	IssuedAt          time.Time `json:"issued_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	Status            Status    `json:"status"` // stored: active, suspended or revoked
	Recipient         string    `json:"recipient"`
	KeyID             string    `json:"key_id"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	// LeaseSeconds is how long a seat is held after an instance last
	// renewed it (the lease length).
	LeaseSeconds int64 `json:"lease_seconds"`
	// MaxActivationsPerDay limits seats newly taken per rolling 24 hours
	// (0: max(10, 2 x max instances); see ActivationsPerDay).
	MaxActivationsPerDay int64 `json:"max_activations_per_day"`
	// SeatTimeoutSeconds: a seat whose holder has not renewed its lease
	// for this long is free for another instance, though the holder's
	// lease still runs (0: the lease length; see SeatTimeout).
	SeatTimeoutSeconds int64 `json:"seat_timeout_seconds"`
	// GraceDays: the license keeps working this many days after ExpiresAt
	// (status grace), online and on leases alike; 0: it stops at ExpiresAt.
	GraceDays int64 `json:"grace_days"`
	// OveragePercent: up to MaxInstances x (1 + OveragePercent/100) seats
	// may be held (SeatCap); those above MaxInstances are overage seats.
	OveragePercent int64 `json:"overage_percent"`
	// ActiveInstances is filled by listings: seats held now (see Seats).
	ActiveInstances int `json:"active_instances"`
}

// MarshalJSON shows the churn limit and the seat timeout in force, not
// the stored 0 that means "the default", and says whether each is the
// default.
func (l License) MarshalJSON() ([]byte, error) {
	type plain License
	return json.Marshal(struct {
		plain
		MaxActivationsPerDay int64 `json:"max_activations_per_day"`
		IsDefault            bool  `json:"max_activations_per_day_is_default"`
		SeatTimeoutSeconds   int64 `json:"seat_timeout_seconds"`
		SeatTimeoutIsDefault bool  `json:"seat_timeout_is_default"`
	}{plain(l), l.ActivationsPerDay(), l.MaxActivationsPerDay == 0, int64(l.SeatTimeout() / time.Second), l.SeatTimeoutSeconds == 0})
}

// SeatTimeoutText is the seat timeout in force, saying when it is the
// lease's: "30m0s", "72h0m0s (the lease)".
func (l License) SeatTimeoutText() string {
	if l.SeatTimeoutSeconds == 0 {
		return l.SeatTimeout().String() + " (the lease)"
	}
	return l.SeatTimeout().String()
}

// SeatTimeout is the seat timeout in force: how long a seat stays held
// after its holder last renewed its lease, SeatTimeoutSeconds or, by
// default, the lease length (a seat is then held exactly while its lease
// runs, as before seat timeouts). Offline leases are never timed out: an
// air-gapped instance cannot renew.
func (l License) SeatTimeout() time.Duration {
	if l.SeatTimeoutSeconds > 0 {
		return time.Duration(l.SeatTimeoutSeconds) * time.Second
	}
	return time.Duration(l.LeaseSeconds) * time.Second
}

// ActivationsPerDay is the churn limit in force: seats newly taken (a new
// instance, or one whose seat had been freed) per rolling 24 hours.
func (l License) ActivationsPerDay() int64 {
	if l.MaxActivationsPerDay > 0 {
		return l.MaxActivationsPerDay
	}
	return max(10, 2*int64(l.MaxInstances))
}

// SeatCounts are a license's activations at a time, by state.
type SeatCounts struct {
	// Live: seats taken (lease unexpired, and not deactivated, or
	// deactivated by its instance and taken until its lease ends);
	// Offline is the part of them held by offline leases.
	Live    int `json:"live"`
	Offline int `json:"offline"`
	// Expired: leases that ran out, or seats that timed out, without a
	// deactivation (dead instances, or cut off); their seats are free.
	Expired     int `json:"expired_lease"`
	Deactivated int `json:"deactivated"`
	// Overage is the part of Live above max instances, under overage
	// allowances (Activation.Overage).
	Overage int `json:"overage"`
}

// EffectiveStatus is the stored status or, for an active license past its
// expiry, grace until its grace days are over and expired from then.
func (l License) EffectiveStatus(now time.Time) Status {
	switch {
	case l.Status != StatusActive || now.Before(l.ExpiresAt):
		return l.Status
	case now.Before(l.GraceEndsAt()):
		return StatusGrace
	}
	return StatusExpired
}

// GraceEndsAt is when the license stops working: its expiry plus its
// grace days.
func (l License) GraceEndsAt() time.Time {
	return l.ExpiresAt.Add(time.Duration(l.GraceDays) * 24 * time.Hour)
}

// SeatCap is how many seats may be held at once: max instances, plus the
// overage allowance (rounded down).
func (l License) SeatCap() int {
	return int(int64(l.MaxInstances) * (100 + l.OveragePercent) / 100)
}

// Claims returns the claims a key for this license carries.
func (l License) Claims() licensekey.Claims {
	return licensekey.Claims{
		LicenseID: l.ID, CustomerID: l.CustomerID, Tier: l.Tier,
		IssuedAt: l.IssuedAt, ExpiresAt: l.ExpiresAt, Features: l.Features,
		MaxInstances: l.MaxInstances, MaxServices: l.MaxServices,
		MaxRequestsPerDay: l.MaxRequestsPerDay, KeyID: l.KeyID,
	}
}

// LicenseKey is one issued key of a license, stored only as a digest and a
// sealed copy. A renewed license has several; all of them validate online.
type LicenseKey struct {
	Digest    string
	LicenseID string
	Sealed    []byte
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Activation is one instance's seat on a license.
type Activation struct {
	LicenseID     string     `json:"license_id"`
	CustomerID    string     `json:"customer_id"`
	InstanceID    string     `json:"instance_id"`
	IPAddress     string     `json:"ip_address"`
	FirstSeen     time.Time  `json:"first_seen"`
	LastSeen      time.Time  `json:"last_seen"`
	DeactivatedAt *time.Time `json:"deactivated_at"`
	// Kind is online (leases from the API) or offline (a lease file).
	Kind           string     `json:"kind"`
	LeaseIssuedAt  *time.Time `json:"lease_issued_at"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at"`
	// SeatTimeout is the license's stored seat timeout (0: none apart from
	// the lease), which the store reads with the activation: an online
	// seat is free once its lease was issued this long ago, even though
	// the lease still runs. See SeatEnd.
	SeatTimeout time.Duration `json:"-"`
	// Overage: the seat was taken above max instances, under the license's
	// overage allowance, and no seat within max instances has come free
	// since its lease was last renewed.
	Overage bool `json:"overage"`
}

// Activation kinds.
const (
	KindOnline  = "online"
	KindOffline = "offline"
)

// Seat states of an activation.
const (
	SeatLive         = "live"
	SeatExpiredLease = "expired"
	SeatDeactivated  = "deactivated"
	// SeatReleasing: its instance deactivated it; it stays taken until the
	// lease the instance was given ends.
	SeatReleasing = "releasing"
)

// SeatEnd is when the activation's seat is free unless renewed first: the
// end of its lease or, for an online lease under a seat timeout, the
// lease's issue time plus the timeout, whichever is earlier. Zero when it
// has no lease. The seat is held before SeatEnd, free from it; the
// store's counts (sqlitestore) apply the same rule.
func (a Activation) SeatEnd() time.Time {
	if a.LeaseExpiresAt == nil {
		return time.Time{}
	}
	end := *a.LeaseExpiresAt
	if a.Kind != KindOffline && a.SeatTimeout > 0 && a.LeaseIssuedAt != nil {
		if t := a.LeaseIssuedAt.Add(a.SeatTimeout); t.Before(end) {
			end = t
		}
	}
	return end
}

// Holds reports whether the activation holds a seat at now: not
// deactivated, its lease not expired and, under a seat timeout, renewed
// within it (before SeatEnd).
func (a Activation) Holds(now time.Time) bool {
	return a.DeactivatedAt == nil && a.LeaseExpiresAt != nil && now.Before(a.SeatEnd())
}

// Occupies reports whether the activation takes up a seat at now: while it
// holds it, and after its instance deactivated it, until the lease it was
// given ends (DeactivatedAt is then that end), or its seat times out
// (SeatEnd), whichever is first. A lease already handed out stays valid
// on the instance's host until then, whatever the instance says: freeing
// the seat earlier would let a copy of the lease run beside the seat's
// next holder (which a seat timeout allows, by its choice, for a holder
// that stopped renewing).
func (a Activation) Occupies(now time.Time) bool {
	return a.LeaseExpiresAt != nil && now.Before(a.SeatEnd()) && (a.DeactivatedAt == nil || now.Before(*a.DeactivatedAt))
}

// OverageSeat reports whether the activation takes up a seat at now as an
// overage seat (taken above max instances, under an overage allowance).
func (a Activation) OverageSeat(now time.Time) bool { return a.Overage && a.Occupies(now) }

// Ended is when the seat ended, or ends: its deactivation (by its own
// instance: when the lease it was given ends), else the end of its lease.
func (a Activation) Ended() time.Time {
	switch {
	case a.DeactivatedAt != nil:
		return *a.DeactivatedAt
	case a.LeaseExpiresAt != nil:
		return *a.LeaseExpiresAt
	}
	return a.LastSeen
}

// State is live, releasing (deactivated by its instance, taken until its
// lease ends or its seat times out), expired (the lease ran out, or the
// seat timed out: it is free) or deactivated.
func (a Activation) State(now time.Time) string {
	switch {
	case a.DeactivatedAt != nil && a.Occupies(now):
		return SeatReleasing
	case a.DeactivatedAt != nil:
		return SeatDeactivated
	case a.Holds(now):
		return SeatLive
	}
	return SeatExpiredLease
}

// ServerCertificate is a server key certified by the license signing key.
type ServerCertificate struct {
	KeyID       string    `json:"key_id"`
	PublicKey   []byte    `json:"-"`
	Certificate string    `json:"certificate"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	CreatedAt   time.Time `json:"created_at"`
}

// SigningKey is an Ed25519 key pair whose private half is sealed under the
// secret-derived key.
type SigningKey struct {
	KeyID            string
	PublicKey        []byte
	SealedPrivateKey []byte
	CreatedAt        time.Time
}

// Event kinds recorded in the append-only event log.
const (
	EventCustomerCreated       = "customer.created"
	EventCustomerUpdated       = "customer.updated"
	EventLicenseCreated        = "license.created"
	EventLicenseRenewed        = "license.renewed"
	EventLicenseSuspended      = "license.suspended"
	EventLicenseRevoked        = "license.revoked"
	EventLicenseReinstated     = "license.reinstated"
	EventActivationCreated     = "activation.created"
	EventActivationRefreshed   = "activation.refreshed"
	EventActivationDeactivated = "activation.deactivated"
	EventSigningKeyCreated     = "signing_key.created"
)

// EventKinds is every kind of event the log holds, for filters that
// must refuse a misspelt one rather than match nothing.
var EventKinds = []string{
	EventCustomerCreated, EventCustomerUpdated,
	EventLicenseCreated, EventLicenseRenewed, EventLicenseUpdated, EventLicenseSuspended, EventLicenseRevoked, EventLicenseReinstated,
	EventActivationCreated, EventActivationRefreshed, EventActivationDeactivated,
	EventDeliverySent, EventDeliveryFailed, EventDeliverySkipped,
	EventSigningKeyCreated, EventSecretRotated, EventServerKeyCertified, EventServerKeyRetired,
}

// Event is one entry of the audit log.
type Event struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	Actor      string    `json:"actor"`
	CustomerID string    `json:"customer_id,omitempty"`
	LicenseID  string    `json:"license_id,omitempty"`
	InstanceID string    `json:"instance_id,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Delivery is one attempt to email a license or a reminder.
type Delivery struct {
	ID        int64  `json:"id"`
	LicenseID string `json:"license_id"`
	Kind      string `json:"kind"` // license, reminder
	// ThresholdDays: a reminder's threshold; negative, the day of the
	// grace of a license in grace (DueReminder).
	ThresholdDays int       `json:"threshold_days,omitempty"`
	Recipient     string    `json:"recipient"`
	Provider      string    `json:"provider"`
	MessageID     string    `json:"message_id,omitempty"`
	At            time.Time `json:"at"`
	Outcome       string    `json:"outcome"` // sent, failed, skipped
	Error         string    `json:"error,omitempty"`
}

// Delivery kinds and outcomes.
const (
	DeliveryLicense  = "license"
	DeliveryReminder = "reminder"
	OutcomeSent      = "sent"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
)

// ReminderClaim reserves the one reminder of a license for a threshold
// and an expiry, before it is sent.
type ReminderClaim struct {
	LicenseID     string    `json:"license_id"`
	ThresholdDays int       `json:"threshold_days"`
	ExpiresAt     time.Time `json:"expires_at"`
	ClaimedAt     time.Time `json:"claimed_at"`
}
