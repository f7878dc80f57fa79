package licensing

import (
	"context"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// Defaults for a new license, shared by the CLI and the functions.
const (
	DefaultExpiresDays       = 365
	DefaultMaxInstances      = 1
	DefaultMaxServices       = 50
	DefaultMaxRequestsPerDay = 10000
)

// GenerateRequest describes a license to issue.
type GenerateRequest struct {
	CustomerID        string
	Tier              string
	ExpiresDays       int
	Features          []string
	MaxInstances      int64
	MaxServices       int64
	MaxRequestsPerDay int64
	// Recipient is the address the license is distributed to, if any.
	Recipient string
	// LeaseSeconds is how long a seat is held without renewal: 0 for
	// DefaultLeaseSeconds; at least a minute, at most the license's life.
	LeaseSeconds int64
	// MaxActivationsPerDay: the churn limit (0: max(10, 2 x max instances)).
	MaxActivationsPerDay int64
	// SeatTimeoutSeconds: an online seat not renewed for this long is free
	// for another instance (0: the lease length); at least a minute, at
	// most the lease.
	SeatTimeoutSeconds int64
	// GraceDays: how long the license keeps working after it expires
	// (0 to MaxGraceDays); OveragePercent: the seats it may hold above max
	// instances, in percent of them (0 to MaxOveragePercent).
	GraceDays      int64
	OveragePercent int64
}

// Bounds of grace and overage. A lease states at most lease.MaxGrace of
// grace, which clients hold it to.
const (
	MaxGraceDays      = 90
	MaxOveragePercent = 100
)

// validateGraceAndOverage checks the two terms.
func validateGraceAndOverage(grace, overage int64) error {
	if grace < 0 || grace > MaxGraceDays {
		return badRequest("grace-days must be from 0 to %d (got %d)", MaxGraceDays, grace)
	}
	if overage < 0 || overage > MaxOveragePercent {
		return badRequest("overage-percent must be from 0 to %d (got %d)", MaxOveragePercent, overage)
	}
	return nil
}

// Issued is a freshly minted key with what it says.
type Issued struct {
	Key     string            `json:"license_key"`
	Claims  licensekey.Claims `json:"claims"`
	License License           `json:"license"`
	// Unchanged: the license already had the terms asked for; no key was
	// issued (Key is empty).
	Unchanged bool `json:"unchanged,omitempty"`
}

func (r *GenerateRequest) validate() ([]string, error) {
	if err := validateCustomerID(r.CustomerID); err != nil {
		return nil, err
	}
	if err := licensekey.ValidateTier(r.Tier); err != nil {
		return nil, badRequest("%v", err)
	}
	features, err := licensekey.NormalizeFeatures(r.Features)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if err := validateDays("expires-days", r.ExpiresDays); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		name string
		n    int64
	}{{"max-instances", r.MaxInstances}, {"max-services", r.MaxServices}, {"max-requests-per-day", r.MaxRequestsPerDay}} {
		if err := validateLimit(l.name, l.n); err != nil {
			return nil, err
		}
	}
	if r.Recipient != "" {
		if err := ValidateEmail(r.Recipient); err != nil {
			return nil, err
		}
	}
	if r.MaxActivationsPerDay < 0 || r.MaxActivationsPerDay > MaxLimit {
		return nil, badRequest("max-activations-per-day must be between 1 and %d, or 0 for the default (got %d)", MaxLimit, r.MaxActivationsPerDay)
	}
	if r.LeaseSeconds == 0 {
		r.LeaseSeconds = min(DefaultLeaseSeconds, int64(r.ExpiresDays)*86400)
	}
	if r.LeaseSeconds < MinLeaseSeconds || r.LeaseSeconds > int64(r.ExpiresDays)*86400 {
		return nil, badRequest("lease must be between 1 minute and the license's %d days (got %d seconds)", r.ExpiresDays, r.LeaseSeconds)
	}
	if err := validateSeatTimeout(r.SeatTimeoutSeconds, r.LeaseSeconds); err != nil {
		return nil, err
	}
	if err := validateGraceAndOverage(r.GraceDays, r.OveragePercent); err != nil {
		return nil, err
	}
	return features, nil
}

// validateSeatTimeout checks a seat timeout against the lease it goes
// with: 0 (the lease), or from a minute to the lease (a longer timeout
// would never apply: the seat is free when the lease ends).
func validateSeatTimeout(secs, leaseSecs int64) error {
	if secs == 0 || (secs >= MinSeatTimeoutSeconds && secs <= leaseSecs) {
		return nil
	}
	lease := time.Duration(leaseSecs) * time.Second
	return badRequest("seat-timeout-minutes must be from 1 to the lease's %d minutes (%s), or 0 for the lease (got %s)",
		leaseSecs/60, lease, time.Duration(secs)*time.Second)
}

// Generate issues a new license and returns its key. It needs the secret.
func (s *Service) Generate(ctx context.Context, r GenerateRequest) (Issued, error) {
	features, err := r.validate()
	if err != nil {
		return Issued{}, err
	}
	// Chosen outside the unit of work so that a re-run issues the same license.
	now := s.now()
	id := newLicenseID()
	var out Issued
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		if _, err := s.customer(tx, r.CustomerID); err != nil {
			return err
		}
		lic := License{
			ID: id, CustomerID: r.CustomerID, Tier: r.Tier, Features: features,
			MaxInstances: uint32(r.MaxInstances), MaxServices: uint32(r.MaxServices),
			MaxRequestsPerDay: uint32(r.MaxRequestsPerDay),
			IssuedAt:          now, ExpiresAt: now.Add(time.Duration(r.ExpiresDays) * 24 * time.Hour),
			Status: StatusActive, Recipient: r.Recipient, CreatedAt: now, UpdatedAt: now,
			LeaseSeconds: r.LeaseSeconds, MaxActivationsPerDay: r.MaxActivationsPerDay,
			SeatTimeoutSeconds: r.SeatTimeoutSeconds, GraceDays: r.GraceDays, OveragePercent: r.OveragePercent,
		}
		issued, err := s.mint(tx, lic, now)
		if err != nil {
			return err
		}
		if err := tx.InsertLicense(issued.License); err != nil {
			return err
		}
		if err := s.storeKey(tx, issued); err != nil {
			return err
		}
		out = issued
		return s.event(tx, now, EventLicenseCreated, Event{CustomerID: lic.CustomerID, LicenseID: id,
			Detail: "tier " + lic.Tier + ", expires " + lic.ExpiresAt.Format(time.RFC3339)})
	})
	return out, err
}

// mint signs a key for lic with the current signing key.
func (s *Service) mint(tx Tx, lic License, now time.Time) (Issued, error) {
	priv, _, err := s.signer(tx, now)
	if err != nil {
		return Issued{}, err
	}
	claims := lic.Claims()
	key, err := licensekey.Encode(claims, priv)
	if err != nil {
		return Issued{}, badRequest("%v", err)
	}
	parsed, err := licensekey.Parse(key)
	if err != nil {
		return Issued{}, err
	}
	lic.KeyID = parsed.Claims.KeyID
	return Issued{Key: key, Claims: parsed.Claims, License: lic}, nil
}

// storeKey keeps a key's digest for lookup and a sealed copy for export.
func (s *Service) storeKey(tx Tx, is Issued) error {
	box, err := s.keys.sealingKey(tx)
	if err != nil {
		return err
	}
	return tx.InsertLicenseKey(LicenseKey{
		Digest: licensekey.Digest(is.Key), LicenseID: is.License.ID,
		Sealed:   box.Seal([]byte(is.Key), licenseKeyAAD(is.License.ID)),
		IssuedAt: is.Claims.IssuedAt, ExpiresAt: is.Claims.ExpiresAt,
	})
}

// Renew extends a license by days (from its expiry, or from now if it has
// lapsed) and issues a new key for it. Seats carry over; earlier keys keep
// validating online because the database is the authority on expiry.
func (s *Service) Renew(ctx context.Context, ref string, days int) (Issued, error) {
	if err := validateDays("days", days); err != nil {
		return Issued{}, err
	}
	now := s.now()
	var out Issued
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		lic, err := s.reissuable(tx, ref)
		if err != nil {
			return err
		}
		from := lic.ExpiresAt
		if from.Before(now) {
			from = now
		}
		lic.ExpiresAt = from.Add(time.Duration(days) * 24 * time.Hour)
		lic.IssuedAt, lic.UpdatedAt = now, now
		out, err = s.reissue(tx, lic, now, tx.UpdateLicense, EventLicenseRenewed, "expires "+lic.ExpiresAt.Format(time.RFC3339))
		return err
	})
	return out, err
}

// reissuable resolves a license (a key or id) whose key may be reissued:
// any but a revoked one.
func (s *Service) reissuable(tx Tx, ref string) (License, error) {
	lic, err := s.resolveLicense(tx, ref)
	if err == nil && lic.Status == StatusRevoked {
		err = Errorf(CodeRevoked, "license %s is revoked, which is final: generate a new license", lic.ID)
	}
	return lic, err
}

// reissue mints a key for a license whose terms or expiry changed, saves
// the license with save, keeps the key and records the event.
func (s *Service) reissue(tx Tx, lic License, now time.Time, save func(License) error, kind, detail string) (Issued, error) {
	issued, err := s.mint(tx, lic, now)
	if err != nil {
		return Issued{}, err
	}
	if err := save(issued.License); err != nil {
		return Issued{}, err
	}
	// Terms that keys do not carry (the churn limit, the lease), changed in
	// the second the current key was issued, sign the same key again
	// (Ed25519 is deterministic): it is stored already.
	_, err = tx.LicenseKey(licensekey.Digest(issued.Key))
	switch {
	case ErrorCode(err) == CodeNotFound:
		if err := s.storeKey(tx, issued); err != nil {
			return Issued{}, err
		}
	case err != nil:
		return Issued{}, err
	}
	return issued, s.event(tx, now, kind, Event{CustomerID: lic.CustomerID, LicenseID: lic.ID, Detail: detail})
}
