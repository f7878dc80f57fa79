package licensing

import (
	"fmt"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// LicenseEndsAt is when the license ends for the key the check was made
// with: the license's expiry, or the key's own if it is earlier (an older
// key of a renewed license). Zero without a verified key.
func (c Check) LicenseEndsAt() time.Time {
	end := c.License.ExpiresAt
	if k := c.Claims.ExpiresAt; !k.IsZero() && (end.IsZero() || k.Before(end)) {
		end = k
	}
	return end
}

// GraceEndsAt is when the key stops working: LicenseEndsAt plus the
// license's grace days. No lease runs past it.
func (c Check) GraceEndsAt() time.Time {
	return c.LicenseEndsAt().Add(time.Duration(c.License.GraceDays) * 24 * time.Hour)
}

// Outcome is what a usable check says, as the API answers it: GRACE once
// the license ended (within its grace), else OVERAGE on a seat above max
// instances, else VALID. A lease made from the check says the same to a
// client offline (lease.Lease.InGrace, Overage).
func (c Check) Outcome(now time.Time) Code {
	switch {
	case c.License.GraceDays > 0 && !now.Before(c.LicenseEndsAt()) && now.Before(c.GraceEndsAt()):
		return CodeGrace
	case c.Activation != nil && c.Activation.Overage:
		return CodeOverage
	}
	return CodeValid
}

// Lease is the lease that carries the check's seat, unsigned: its times
// from the activation, and the license's end, its grace and whether the
// seat is above max instances. An online lease is due for renewal at
// Activation.LeaseRenewAfter; an offline one is never renewed. ok is false
// when the check holds no lease.
func (c Check) Lease(kind lease.Kind, key string) (l lease.Lease, ok bool) {
	a := c.Activation
	if a == nil || a.LeaseIssuedAt == nil || a.LeaseExpiresAt == nil {
		return l, false
	}
	l = lease.Lease{Kind: kind, LicenseID: a.LicenseID, KeyDigest: licensekey.Digest(key), InstanceID: a.InstanceID,
		IssuedAt: *a.LeaseIssuedAt, RenewAfter: a.LeaseRenewAfter(), ExpiresAt: *a.LeaseExpiresAt,
		LicenseEndsAt: c.LicenseEndsAt(), GraceEndsAt: c.GraceEndsAt(), Overage: a.Overage}
	// The seat's lease was capped when it was issued; the grace may have
	// been shortened since, or the key asked with may be an older one that
	// ends sooner: the token never runs past the grace it states.
	if l.ExpiresAt.After(l.GraceEndsAt) {
		l.ExpiresAt = l.GraceEndsAt
	}
	if kind == lease.Offline || l.RenewAfter.After(l.ExpiresAt) {
		l.RenewAfter = l.ExpiresAt
	}
	return l, true
}

// Warning is the line a usable but warned outcome adds (GRACE, OVERAGE):
// what is wrong and until when; "" for VALID.
func (c Check) Warning(now time.Time) string {
	switch c.Outcome(now) {
	case CodeGrace:
		return "the license expired on " + c.LicenseEndsAt().Format(time.RFC3339) + "; it keeps working in its grace until " +
			c.GraceEndsAt().Format(time.RFC3339) + ": renew it with your vendor"
	case CodeOverage:
		return fmt.Sprintf("this seat is above the license's %d max instances, within its %d%% overage allowance: ask your vendor for more instances",
			c.License.MaxInstances, c.License.OveragePercent)
	}
	return ""
}

// seatsText names the seats a license may hold: "5 instance seats", or
// with an overage allowance "6 instance seats (5 and 20% overage)".
func seatsText(lic License) string {
	if lic.OveragePercent == 0 {
		return fmt.Sprintf("%d instance seats", lic.MaxInstances)
	}
	return fmt.Sprintf("%d instance seats (%d and %d%% overage)", lic.SeatCap(), lic.MaxInstances, lic.OveragePercent)
}
