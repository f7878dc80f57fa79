// Package licensing is the domain: customers, licenses, keys, seats and the
// event log. It depends on no AWS package, SQL driver or transport; storage
// sits behind the Store interface.
package licensing

import (
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// Status is a license's state. Expired is derived from the expiry time and
// never stored.
type Status string

// License statuses.
const (
	StatusActive    Status = "active"
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
	// ActiveInstances is filled by listings: activations not deactivated.
	ActiveInstances int `json:"active_instances"`
}

// EffectiveStatus is the stored status, or expired for an active license past its expiry.
func (l License) EffectiveStatus(now time.Time) Status {
	if l.Status == StatusActive && !now.Before(l.ExpiresAt) {
		return StatusExpired
	}
	return l.Status
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
}

// Active reports whether the activation holds a seat.
func (a Activation) Active() bool { return a.DeactivatedAt == nil }

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
	ID            int64     `json:"id"`
	LicenseID     string    `json:"license_id"`
	Kind          string    `json:"kind"` // license, reminder
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
	LicenseID     string
	ThresholdDays int
	ExpiresAt     time.Time
	ClaimedAt     time.Time
}
