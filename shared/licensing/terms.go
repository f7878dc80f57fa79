package licensing

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// TermsChange changes a license's terms; nil fields stay as they are.
type TermsChange struct {
	Tier                 *string
	Features             *[]string
	MaxInstances         *int64
	MaxServices          *int64
	MaxRequestsPerDay    *int64
	ExpiresAt            *time.Time
	LeaseSeconds         *int64
	MaxActivationsPerDay *int64
	// SeatTimeoutSeconds: 0 for the lease length. A lease shorter than
	// the seat timeout (the new one, or the license's) is refused.
	SeatTimeoutSeconds *int64
	// GraceDays and OveragePercent: see GenerateRequest.
	GraceDays      *int64
	OveragePercent *int64
}

// EventLicenseUpdated records changed terms.
const EventLicenseUpdated = "license.updated"

// UpdateTerms changes a license's terms and issues a new key that carries
// them (terms are signed into keys). It needs the secret. The server
// enforces the database's terms online from now on, for every key of the
// license; an earlier key still verifies offline with the terms it carries.
func (s *Service) UpdateTerms(ctx context.Context, ref string, ch TermsChange) (Issued, error) {
	now := s.now()
	var out Issued
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		lic, err := s.reissuable(tx, ref)
		if err != nil {
			return err
		}
		var changed []string
		if ch.Tier != nil {
			if err := licensekey.ValidateTier(*ch.Tier); err != nil {
				return badRequest("%v", err)
			}
			if *ch.Tier != lic.Tier {
				lic.Tier, changed = *ch.Tier, append(changed, "tier "+*ch.Tier)
			}
		}
		if ch.Features != nil {
			fs, err := licensekey.NormalizeFeatures(*ch.Features)
			if err != nil {
				return badRequest("%v", err)
			}
			if !slices.Equal(fs, lic.Features) {
				lic.Features, changed = fs, append(changed, "features "+strings.Join(fs, ","))
			}
		}
		for _, l := range []struct {
			name string
			v    *int64
			dst  *uint32
		}{{"max-instances", ch.MaxInstances, &lic.MaxInstances}, {"max-services", ch.MaxServices, &lic.MaxServices},
			{"max-requests-per-day", ch.MaxRequestsPerDay, &lic.MaxRequestsPerDay}} {
			if l.v == nil {
				continue
			}
			if err := validateLimit(l.name, *l.v); err != nil {
				return err
			}
			if uint32(*l.v) != *l.dst {
				*l.dst, changed = uint32(*l.v), append(changed, fmt.Sprintf("%s %d", l.name, *l.v))
			}
		}
		if ch.ExpiresAt != nil {
			if !ch.ExpiresAt.After(now) || ch.ExpiresAt.After(now.Add(MaxDays*24*time.Hour)) {
				return badRequest("expires-at must be in the next %d days (got %s)", MaxDays, ch.ExpiresAt.UTC().Format(time.RFC3339))
			}
			if at := ch.ExpiresAt.UTC().Truncate(time.Second); !at.Equal(lic.ExpiresAt) {
				lic.ExpiresAt, changed = at, append(changed, "expires "+at.Format(time.RFC3339))
			}
		}
		if ch.MaxActivationsPerDay != nil {
			if *ch.MaxActivationsPerDay < 0 || *ch.MaxActivationsPerDay > MaxLimit {
				return badRequest("max-activations-per-day must be between 1 and %d, or 0 for the default (got %d)", MaxLimit, *ch.MaxActivationsPerDay)
			}
			if *ch.MaxActivationsPerDay != lic.MaxActivationsPerDay {
				lic.MaxActivationsPerDay, changed = *ch.MaxActivationsPerDay, append(changed, fmt.Sprintf("max-activations-per-day %d", *ch.MaxActivationsPerDay))
			}
		}
		if ch.LeaseSeconds != nil {
			lease := time.Duration(*ch.LeaseSeconds) * time.Second
			switch left := lic.ExpiresAt.Sub(now); {
			case *ch.LeaseSeconds < MinLeaseSeconds:
				return badRequest("lease must be at least 1 minute (got %s)", lease)
			case left <= 0:
				return Errorf(CodeExpired, "license %s expired on %s: its lease cannot change; renew it first (renew-license)", lic.ID, lic.ExpiresAt.Format(time.RFC3339))
			case lease > left:
				return badRequest("lease must be no longer than the license's remaining life, %s until %s (got %s)", left.Truncate(time.Second), lic.ExpiresAt.Format(time.RFC3339), lease)
			}
			if *ch.LeaseSeconds != lic.LeaseSeconds {
				lic.LeaseSeconds, changed = *ch.LeaseSeconds, append(changed, fmt.Sprintf("lease %s", time.Duration(*ch.LeaseSeconds)*time.Second))
			}
		}
		// After the lease: a timeout is checked against the lease it will
		// go with. A shorter lease than the timeout in force is refused,
		// not clamped: the operator chose that timeout, and says which
		// to change.
		if ch.SeatTimeoutSeconds != nil {
			if err := validateSeatTimeout(*ch.SeatTimeoutSeconds, lic.LeaseSeconds); err != nil {
				return err
			}
			if *ch.SeatTimeoutSeconds != lic.SeatTimeoutSeconds {
				lic.SeatTimeoutSeconds = *ch.SeatTimeoutSeconds
				changed = append(changed, "seat timeout "+lic.SeatTimeoutText())
			}
		} else if lic.SeatTimeoutSeconds > lic.LeaseSeconds {
			return badRequest("the new lease, %s, is shorter than the license's seat timeout, %s: give a seat timeout no longer than the lease too (seat-timeout-minutes; 0 for the lease)",
				time.Duration(lic.LeaseSeconds)*time.Second, time.Duration(lic.SeatTimeoutSeconds)*time.Second)
		}
		if ch.GraceDays != nil || ch.OveragePercent != nil {
			grace, overage := cmp.Or(ch.GraceDays, &lic.GraceDays), cmp.Or(ch.OveragePercent, &lic.OveragePercent)
			if err := validateGraceAndOverage(*grace, *overage); err != nil {
				return err
			}
			if *grace != lic.GraceDays {
				lic.GraceDays, changed = *grace, append(changed, fmt.Sprintf("grace %d days", *grace))
			}
			if *overage != lic.OveragePercent {
				lic.OveragePercent, changed = *overage, append(changed, fmt.Sprintf("overage %d%%", *overage))
			}
		}
		if len(changed) == 0 {
			// The same terms again (a script run twice): no new key, no
			// event, and the caller is told so.
			out = Issued{License: lic, Unchanged: true}
			return nil
		}
		slices.Sort(changed)
		lic.IssuedAt, lic.UpdatedAt = now, now
		out, err = s.reissue(tx, lic, now, tx.UpdateTerms, EventLicenseUpdated, strings.Join(changed, "; "))
		return err
	})
	return out, err
}
