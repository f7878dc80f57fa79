package licensing

import (
	"context"
	"time"
)

// Store runs units of work against the database.
//
// Update must be safe to re-run: a store may call fn again on a fresh
// transaction when it loses a race (the S3 store re-runs the whole operation,
// business checks included, when its conditional write fails). fn must not
// have effects outside tx.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction. Lookups of a missing row return an *Error with
// CodeNotFound; inserting a duplicate returns CodeAlreadyExists.
//
// It is composed of roles, each the methods that serve one purpose, so
// that a method is found by what it is for and a store can be written and
// reviewed a role at a time.
type Tx interface {
	SettingTx
	KeyTx
	CustomerTx
	LicenseTx
	SeatTx
	EventTx
	DeliveryTx
	ReportingTx
	MaintenanceTx
}

// SettingTx reads and writes the database's named settings: values it
// keeps about itself, such as the salt and parameters that derive the
// sealing key from the secret.
type SettingTx interface {
	Setting(name string) ([]byte, error) // nil, nil when unset
	PutSetting(name string, value []byte) error
}

// KeyTx holds the service's own keys: the signing keys, sealed under the
// secret (rotating it reseals them), that sign license keys and certify
// server keys; and those certificates (a server's private key is never
// stored).
type KeyTx interface {
	SigningKeys() ([]SigningKey, error) // oldest first
	InsertSigningKey(SigningKey) error
	ResealSigningKey(keyID string, sealed []byte) error

	InsertServerCertificate(ServerCertificate) error
	DeleteServerCertificates(keyID string) error
	ServerCertificates() ([]ServerCertificate, error) // oldest first
}

// CustomerTx holds the customers licenses are issued to.
type CustomerTx interface {
	InsertCustomer(Customer) error
	Customer(id string) (Customer, error)
	UpdateCustomer(Customer) error
	Customers() ([]Customer, error)
}

// LicenseTx holds licenses and the keys issued for them. A key is stored
// sealed and found by its digest, which is how a presented key leads to
// its license.
type LicenseTx interface {
	InsertLicense(License) error
	License(id string) (License, error)
	UpdateLicense(License) error
	// UpdateTerms writes a license's terms (tier, features, limits, expiry,
	// lease, churn limit), issue time and signing key.
	UpdateTerms(License) error
	Licenses(LicenseFilter) ([]License, error)

	InsertLicenseKey(LicenseKey) error
	LicenseKey(digest string) (LicenseKey, error)
	// LicenseByKeyDigest is the license of the key with digest.
	LicenseByKeyDigest(digest string) (License, error)
	LatestLicenseKey(licenseID string) (LicenseKey, error)
	LicenseKeys(licenseID string) ([]LicenseKey, error) // oldest first
	AllLicenseKeys() ([]LicenseKey, error)
	ResealLicenseKey(digest string, sealed []byte) error
}

// SeatTx holds the seats instances take on a license (activations and
// their leases), and the seats granted, which the churn limit counts.
type SeatTx interface {
	Activation(licenseID, instanceID string) (Activation, error)
	PutActivation(Activation) error
	// ActiveInstances counts the seats taken at now (see
	// Activation.Occupies): lease unexpired and, for online leases under
	// seatTimeout (0: none), issued less than seatTimeout before now; not
	// deactivated, or deactivated by the instance with DeactivatedAt after now.
	ActiveInstances(licenseID string, now time.Time, seatTimeout time.Duration) (int, error)
	// OverageInstances counts, of those, the seats marked Overage.
	OverageInstances(licenseID string, now time.Time, seatTimeout time.Duration) (int, error)
	Activations(licenseID string) ([]Activation, error) // all licenses when ""

	// SeatGrants counts the seats granted on a license after since, and
	// gives the oldest of them.
	SeatGrants(licenseID string, since time.Time) (int, time.Time, error)
	// AddSeatGrant records a seat granted at at, pruning those before prune.
	AddSeatGrant(licenseID string, at, prune time.Time) error
}

// EventTx is the audit log: every change appends an event.
type EventTx interface {
	AppendEvent(Event) error
	Events(EventFilter) ([]Event, error)
}

// DeliveryTx records the emails sent about licenses, and the claims that
// keep a renewal reminder from going out twice.
type DeliveryTx interface {
	InsertDelivery(Delivery) error
	Deliveries(licenseID string) ([]Delivery, error) // all licenses when ""

	// InsertReminderClaim fails with CodeAlreadyExists when the claim exists.
	InsertReminderClaim(ReminderClaim) error
	ReminderClaimed(licenseID string, thresholdDays int, expiresAt time.Time) (bool, error)
	MarkReminderSent(ReminderClaim) error
	DeleteReminderClaim(ReminderClaim) error
}

// ReportingTx answers the stats, the license listings and the operator
// report with counts the store computes, rather than rows read to be
// counted here; and it keeps the refusal counts the report shows.
type ReportingTx interface {
	// SeatCounts counts every license's seats at now, by license id.
	SeatCounts(now time.Time) (map[string]SeatCounts, error)
	// SeatTotals counts all seats at now.
	SeatTotals(now time.Time) (SeatCounts, error)
	// LicenseTotals counts licenses by tier and effective status at now,
	// and the active ones that expire before soon.
	LicenseTotals(now, soon time.Time) ([]LicenseTotal, error)
	// CustomerCount counts customers.
	CustomerCount() (int, error)
	// ExpiringLicenses lists active licenses expiring in (now, until], soonest first.
	ExpiringLicenses(now, until time.Time) ([]ExpiringLicense, error)
	// CustomerSeats sums, per customer, the live seats and max instances
	// of its active licenses.
	CustomerSeats(now time.Time) ([]CustomerSeats, error)
	// EventCountsByDay counts events of kinds since, by day; oldest is the
	// time of the oldest event in the database (zero when there is none).
	EventCountsByDay(since time.Time, kinds map[string]bool) (counts []DayCount, oldest time.Time, err error)
	// DeliveryCounts counts deliveries since, by kind and outcome.
	DeliveryCounts(since time.Time) ([]DeliveryCount, error)
	// FailedDeliveries lists the latest failed deliveries since, up to limit.
	FailedDeliveries(since time.Time, limit int) ([]Delivery, error)
	// AddRefusals adds n to the refusals of code on day.
	AddRefusals(day string, code Code, n int) error
	// RefusalCounts lists refusal counts since, by day and code.
	RefusalCounts(since time.Time) ([]RefusalCount, error)
}

// MaintenanceTx keeps the database from growing without bound: it moves
// old events, deliveries, stale reminder claims and ended seats out to
// archive files (and lists those files).
type MaintenanceTx interface {
	// OldRows lists up to limit rows of kind (events, deliveries) older than
	// before, by id.
	OldRows(kind string, before time.Time, limit int) ([]ArchivedRow, error)
	// DeleteArchived deletes the rows of kind with ids first..last older
	// than before; the triggers allow it only when an archive covers them.
	DeleteArchived(kind string, first, last int64, before time.Time) (int64, error)
	// StaleReminderClaims lists claims made before before for expiries
	// before now; DeleteStaleReminderClaims deletes them.
	StaleReminderClaims(before, now time.Time) ([]ReminderClaim, error)
	DeleteStaleReminderClaims(before, now time.Time) (int64, error)
	// EndedActivations lists up to limit seats that ended before before:
	// deactivated then (by its instance: when its lease ended), or whose
	// lease ran out then.
	EndedActivations(before time.Time, limit int) ([]Activation, error)
	// DeleteEndedActivations deletes those of seats still as listed (a
	// seat taken again since is kept) and ended before before.
	DeleteEndedActivations(seats []Activation, before time.Time) (int64, error)
	InsertArchive(ArchiveRecord) error
	// Archives lists the archive files of kind holding records at or after
	// since (all when since is zero), oldest first.
	Archives(kind string, since time.Time) ([]ArchiveRecord, error)
}

// LicenseFilter narrows Licenses; zero fields match everything.
type LicenseFilter struct {
	CustomerID string
	// IDPrefix keeps licenses whose id starts with it (lower-case hex).
	IDPrefix string
	// Status filters on the stored status; expired is resolved by the caller.
	Status Status
	// ExpiresBefore, when set, keeps licenses expiring before it.
	ExpiresBefore time.Time
}

// EventFilter narrows Events; zero fields match everything.
type EventFilter struct {
	LicenseID string
	Since     time.Time
}
