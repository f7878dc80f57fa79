package licensing

import (
	"context"
	"math"
	"sort"
	"time"
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
	Total   int `json:"total"`
	Active  int `json:"active"`
	Expired int `json:"expired"`
	// InGrace: licenses past their expiry, within their grace days (they
	// keep working; renew them). Not counted in Active nor Expired.
	InGrace            int `json:"in_grace"`
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
		case StatusGrace:
			st.InGrace += l.Count
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

// Reminder is an active license due for renewal: expiring soon, or past
// its expiry within its grace days (InGrace).
type Reminder struct {
	LicenseID    string    `json:"license_id"`
	CustomerID   string    `json:"customer_id"`
	CustomerName string    `json:"customer_name"`
	Email        string    `json:"email"`
	Tier         string    `json:"tier"`
	ExpiresAt    time.Time `json:"expires_at"`
	// DaysLeft: whole days, rounded up, until the license stops working:
	// its expiry or, in grace, its grace's end.
	DaysLeft int `json:"days_left"`
	// InGrace: the license expired and works on in its grace until
	// GraceEndsAt (its expiry plus its grace days, whether in grace or not).
	InGrace     bool      `json:"in_grace"`
	GraceEndsAt time.Time `json:"grace_ends_at"`
}

// RenewalReminders lists the active licenses that expire within days, and
// those in grace (whatever days), soonest first. Email is the address the
// license went to, else the customer's.
func (s *Service) RenewalReminders(ctx context.Context, days int) ([]Reminder, error) {
	if err := validateDays("days", days); err != nil {
		return nil, err
	}
	now := s.now()
	out := []Reminder{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		// Those past their expiry are listed too: a license in grace is
		// the most urgent reminder of all.
		lics, err := tx.Licenses(LicenseFilter{Status: StatusActive, ExpiresBefore: now.Add(time.Duration(days) * 24 * time.Hour)})
		if err != nil {
			return err
		}
		for _, l := range lics {
			status := l.EffectiveStatus(now)
			if status != StatusActive && status != StatusGrace {
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
			end := l.ExpiresAt
			if status == StatusGrace {
				end = l.GraceEndsAt()
			}
			out = append(out, Reminder{
				LicenseID: l.ID, CustomerID: c.ID, CustomerName: c.Name, Email: email, Tier: l.Tier,
				ExpiresAt: l.ExpiresAt, DaysLeft: int(math.Ceil(end.Sub(now).Hours() / 24)),
				InGrace: status == StatusGrace, GraceEndsAt: l.GraceEndsAt(),
			})
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].ExpiresAt.Before(out[j].ExpiresAt) })
	return out, err
}
