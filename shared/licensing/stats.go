package licensing

import (
	"context"
	"crypto/ed25519"
	"math"
	"sort"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// DefaultExpiringDays is the window of "expiring soon" and of reminders.
const DefaultExpiringDays = 30

// TierStats counts licenses of one tier.
type TierStats struct {
	Total  int `json:"total"`
	Active int `json:"active"`
}

// Stats summarises the licenses.
type Stats struct {
	Total              int `json:"total"`
	Active             int `json:"active"`
	Expired            int `json:"expired"`
	ExpiringSoon       int `json:"expiring_soon"`
	ExpiringWithinDays int `json:"expiring_within_days"`
	Suspended          int `json:"suspended"`
	Revoked            int `json:"revoked"`
	Customers          int `json:"customers"`
	ActiveInstances    int `json:"active_instances"`
	// Seats: live (held by unexpired leases), expired leases, deactivated.
	Seats  SeatCounts           `json:"seats"`
	ByTier map[string]TierStats `json:"by_tier"`
}

// Stats counts licenses by status and tier. Expiring soon is the subset of
// active licenses that expire within days.
func (s *Service) Stats(ctx context.Context, days int) (Stats, error) {
	if err := validateDays("days", days); err != nil {
		return Stats{}, err
	}
	var st Stats
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		st, err = statsTx(tx, s.now(), days)
		return err
	})
	return st, err
}

// statsTx is Stats in tx. Aggregates in SQL: the cost follows the number
// of tiers, not licenses.
func statsTx(tx Tx, now time.Time, days int) (Stats, error) {
	st := Stats{ExpiringWithinDays: days, ByTier: map[string]TierStats{}}
	totals, err := tx.LicenseTotals(now, now.Add(time.Duration(days)*24*time.Hour))
	if err != nil {
		return st, err
	}
	if st.Seats, err = tx.SeatTotals(now); err != nil {
		return st, err
	}
	st.ActiveInstances = st.Seats.Live
	if st.Customers, err = tx.CustomerCount(); err != nil {
		return st, err
	}
	for _, l := range totals {
		st.Total += l.Count
		t := st.ByTier[l.Tier]
		t.Total += l.Count
		switch l.Status {
		case StatusActive:
			st.Active += l.Count
			t.Active += l.Count
			st.ExpiringSoon += l.ExpiringSoon
		case StatusExpired:
			st.Expired += l.Count
		case StatusSuspended:
			st.Suspended += l.Count
		case StatusRevoked:
			st.Revoked += l.Count
		}
		st.ByTier[l.Tier] = t
	}
	return st, nil
}

// LicenseTotal is a count of licenses of one tier in one effective status.
type LicenseTotal struct {
	Tier         string
	Status       Status
	Count        int
	ExpiringSoon int
}

// fillSeats sets each license's seats in use at now.
func fillSeats(tx Tx, lics []License, now time.Time) error {
	seats, err := tx.SeatCounts(now)
	for i := range lics {
		lics[i].ActiveInstances = seats[lics[i].ID].Live
	}
	return err
}

// Reminder is an active license due for renewal.
type Reminder struct {
	LicenseID    string    `json:"license_id"`
	CustomerID   string    `json:"customer_id"`
	CustomerName string    `json:"customer_name"`
	Email        string    `json:"email"`
	Tier         string    `json:"tier"`
	ExpiresAt    time.Time `json:"expires_at"`
	DaysLeft     int       `json:"days_left"`
}

// RenewalReminders lists active licenses that expire within days, soonest
// first. Email is the address the license went to, else the customer's.
func (s *Service) RenewalReminders(ctx context.Context, days int) ([]Reminder, error) {
	if err := validateDays("days", days); err != nil {
		return nil, err
	}
	now := s.now()
	out := []Reminder{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		lics, err := tx.Licenses(LicenseFilter{Status: StatusActive, ExpiresBefore: now.Add(time.Duration(days) * 24 * time.Hour)})
		if err != nil {
			return err
		}
		for _, l := range lics {
			if l.EffectiveStatus(now) != StatusActive {
				continue
			}
			c, err := tx.Customer(l.CustomerID)
			if err != nil {
				return err
			}
			email := l.Recipient
			if email == "" {
				email = c.Email
			}
			out = append(out, Reminder{
				LicenseID: l.ID, CustomerID: c.ID, CustomerName: c.Name, Email: email, Tier: l.Tier,
				ExpiresAt: l.ExpiresAt, DaysLeft: int(math.Ceil(l.ExpiresAt.Sub(now).Hours() / 24)),
			})
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].ExpiresAt.Before(out[j].ExpiresAt) })
	return out, err
}

// LicenseView is a license with its effective status.
type LicenseView struct {
	License
	EffectiveStatus Status `json:"effective_status"`
}

// Licenses lists licenses; status may be expired, which is resolved here.
func (s *Service) Licenses(ctx context.Context, customerID string, status Status) ([]LicenseView, error) {
	switch status {
	case "", StatusActive, StatusExpired, StatusSuspended, StatusRevoked:
	default:
		return nil, badRequest("unknown status %q: use active, expired, suspended or revoked", status)
	}
	now := s.now()
	out := []LicenseView{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		f := LicenseFilter{CustomerID: customerID, Status: status}
		if status == StatusExpired {
			f.Status = StatusActive
		}
		lics, err := tx.Licenses(f)
		if err != nil {
			return err
		}
		if err := fillSeats(tx, lics, now); err != nil {
			return err
		}
		for _, l := range lics {
			eff := l.EffectiveStatus(now)
			if status == "" || eff == status {
				out = append(out, LicenseView{License: l, EffectiveStatus: eff})
			}
		}
		return nil
	})
	return out, err
}

// Exported is a license with its current key, for reporting.
type Exported struct {
	LicenseView
	Key string `json:"license_key"`
}

// Export returns every license with its latest key. It needs the secret,
// since keys are stored only sealed.
func (s *Service) Export(ctx context.Context) ([]Exported, error) {
	now := s.now()
	out := []Exported{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		box, err := s.sealingKey(tx)
		if err != nil {
			return err
		}
		if _, _, err := s.signerIfAny(tx); err != nil {
			return err
		}
		lics, err := tx.Licenses(LicenseFilter{})
		if err != nil {
			return err
		}
		if err := fillSeats(tx, lics, now); err != nil {
			return err
		}
		for _, l := range lics {
			lk, err := tx.LatestLicenseKey(l.ID)
			if err != nil {
				return err
			}
			key, err := box.Open(lk.Sealed, licenseKeyAAD(l.ID))
			if err != nil {
				return errSecretMismatch()
			}
			out = append(out, Exported{LicenseView: LicenseView{License: l, EffectiveStatus: l.EffectiveStatus(now)}, Key: string(key)})
		}
		return nil
	})
	return out, err
}

// signerIfAny checks the secret against an existing signing key without
// creating one (read-only transactions cannot).
func (s *Service) signerIfAny(tx Tx) (ed25519.PrivateKey, bool, error) {
	keys, err := tx.SigningKeys()
	if err != nil || len(keys) == 0 {
		return nil, false, err
	}
	priv, _, err := s.signer(tx, s.now())
	return priv, true, err
}

// Events lists the audit log, oldest first.
func (s *Service) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	out := []Event{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		if f.LicenseID, err = s.optionalLicenseID(tx, f.LicenseID); err != nil {
			return err
		}
		out, err = tx.Events(f)
		return err
	})
	return out, err
}

// VerifyKey checks a key's signature offline and returns its claims. With
// configured public keys it needs no store at all.
func (s *Service) VerifyKey(ctx context.Context, key string) (licensekey.Claims, error) {
	if s.cfg.PublicKeys != nil || s.cfg.Store == nil {
		if s.cfg.PublicKeys == nil {
			return licensekey.Claims{}, Errorf(CodePublicKeyRequired, "no public key: set CAIO_LICENSE_PUBLIC_KEY (see 'manage-licenses public-key') or use --db")
		}
		return verify(key, s.cfg.PublicKeys)
	}
	var claims licensekey.Claims
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		keys, err := s.verificationKeys(tx)
		if err != nil {
			return err
		}
		claims, err = verify(key, keys)
		return err
	})
	return claims, err
}
