package licensing

import (
	"context"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/instanceid"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// HeartbeatInterval is how often a validate call may refresh an instance's
// last-seen time; more frequent validations write nothing.
const HeartbeatInterval = time.Hour

// SeatRequest names a license key, the instance using it and where from.
type SeatRequest struct {
	Key        string
	InstanceID string
	IPAddress  string
	// CountSeats asks for the license's seats in use also when the instance
	// renews a seat it holds (the count is then not needed to decide, and
	// costs more than the rest of a renewal on a license of many seats).
	CountSeats bool
	// Immediate (deactivate, the operator's): the seat is free at once.
	// An instance's own deactivation frees it when the lease it was given
	// ends, since a copy of that lease verifies until then.
	Immediate bool
}

// Check is the outcome of a key check. When the key verified but the
// operation was refused (expired, suspended, no seat left), Claims is still
// set so that callers can say what the key says.
type Check struct {
	Claims     licensekey.Claims `json:"claims"`
	License    License           `json:"license"`
	Activation *Activation       `json:"activation,omitempty"`
	// Changed reports whether the operation wrote anything.
	Changed bool `json:"-"`
	// Renewed: the instance held its seat and got a new lease; unless
	// CountSeats was asked, License.ActiveInstances is then not counted.
	Renewed bool `json:"renewed,omitempty"`
	// At is when the check was made, by the service's clock: what its
	// outcome (Outcome) and the lease's state are judged at.
	At time.Time `json:"-"`
}

// validate checks a request, normalising its instance id first (NFC): the
// id stored, counted and answered about is the normalised one.
func (r *SeatRequest) validate(instanceRequired bool) error {
	r.InstanceID = instanceid.Normalize(r.InstanceID)
	if r.InstanceID != "" || instanceRequired {
		if err := ValidateInstanceID(r.InstanceID); err != nil {
			return err
		}
	}
	return validateIP(r.IPAddress)
}

// Lease lengths. A seat is held while its lease is unexpired and, under a
// seat timeout, renewed within it; an instance renews its lease (validate)
// once past half of it, or half the seat timeout if that is earlier.
const (
	DefaultLeaseSeconds = 72 * 3600
	MinLeaseSeconds     = 60
	// MinSeatTimeoutSeconds: a seat timeout is at least a minute, and at
	// most the lease (a longer one would never apply).
	MinSeatTimeoutSeconds = 60
)

// LeaseRenewAfter is when an activation's lease is due for renewal: half
// way through it or, under a seat timeout, half way through that if it is
// earlier, so that a live holder renews well before its seat times out.
func (a Activation) LeaseRenewAfter() time.Time {
	if a.LeaseIssuedAt == nil || a.LeaseExpiresAt == nil {
		return time.Time{}
	}
	at := a.LeaseIssuedAt.Add(a.LeaseExpiresAt.Sub(*a.LeaseIssuedAt) / 2)
	if a.Kind != KindOffline && a.SeatTimeout > 0 {
		if t := a.LeaseIssuedAt.Add(a.SeatTimeout / 2); t.Before(at) {
			at = t
		}
	}
	return at
}

// Activate verifies the key, checks the license and takes (or refreshes) a
// seat for the instance, enforcing max instances, with a new lease.
//
// Seats are leases: an activation holds its seat while its lease is
// unexpired and, under the license's seat timeout, renewed within it. A
// seat whose lease ran out or timed out is free, and the next activation
// of any instance may take it; there is no clean-up job. The count of held
// seats and the taking of one happen in the same unit of work, so max
// instances holds exactly under concurrency (in S3 mode too: the whole unit
// is re-run when another writer wins).
func (s *Service) Activate(ctx context.Context, r SeatRequest) (Check, error) {
	return s.activate(ctx, r, KindOnline, 0)
}

func (s *Service) activate(ctx context.Context, r SeatRequest, kind string, lease time.Duration) (Check, error) {
	if err := r.validate(true); err != nil {
		s.noteRefusal(err)
		return Check{}, err
	}
	var out Check
	err := s.seatUpdate(ctx, func(tx Tx) (bool, error) {
		var err error
		out, err = s.activateTx(tx, r, s.now(), kind, lease)
		return out.Changed, err
	})
	return out, err
}

// seatUpdate runs a seat operation as one unit of work. When fn changed
// something, the pending refusal counts ride along in the same unit and are
// forgotten once it commits; when it ends in a refusal, that is counted.
func (s *Service) seatUpdate(ctx context.Context, fn func(Tx) (changed bool, err error)) error {
	// Proving the keys with the secret derives the sealing key (Argon2id,
	// ~0.3 s): done first in a read, not while holding the write lock,
	// where concurrent writers would wait it out (and time out, locally).
	if s.keys.hasSecret() && s.keys.pinned == nil && !s.keys.hasProven() {
		s.cfg.Store.View(ctx, func(tx Tx) error { _, err := s.keys.verificationKeys(tx); return err }) // its errors recur below
	}
	var recorded map[refusalKey]int
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		recorded = nil // a re-run starts over
		changed, err := fn(tx)
		if err != nil || !changed {
			return err
		}
		recorded, err = s.flushRefusals(tx)
		return err
	})
	if err != nil {
		s.noteRefusal(err)
		return err
	}
	s.flushed(recorded)
	return nil
}

// activateTx verifies the key, checks the license and takes a seat, in tx.
func (s *Service) activateTx(tx Tx, r SeatRequest, now time.Time, kind string, lease time.Duration) (Check, error) {
	lic, claims, err := s.licenseByKey(tx, r.Key)
	if err != nil {
		return Check{Claims: claims, License: lic}, err
	}
	if err := usable(lic, now); err != nil {
		return Check{Claims: claims, License: lic}, err
	}
	act, err := tx.Activation(lic.ID, r.InstanceID)
	if err != nil && ErrorCode(err) != CodeNotFound {
		return Check{Claims: claims, License: lic}, err
	}
	return s.takeSeat(tx, lic, claims, r, act, err == nil, now, kind, lease)
}

// takeSeat gives the instance a new lease, taking a free seat when it holds
// none. existing says whether act was found.
func (s *Service) takeSeat(tx Tx, lic License, claims licensekey.Claims, r SeatRequest, act Activation, existing bool, now time.Time, kind string, lease time.Duration) (Check, error) {
	out := Check{Claims: claims, License: lic, At: now}
	renewal := existing && act.Holds(now)
	// An instance that deactivated itself still occupies its seat until
	// its lease ends: activating again takes that seat back, not another.
	reclaim := existing && !renewal && act.Occupies(now)
	// Under an overage allowance a renewal is counted too: whether its
	// seat is above max instances depends on the others.
	overage := lic.OveragePercent > 0 || act.Overage
	used, over := 0, 0
	if !renewal || r.CountSeats || overage {
		var err error
		timeout := time.Duration(lic.SeatTimeoutSeconds) * time.Second
		if used, err = tx.ActiveInstances(lic.ID, now, timeout); err != nil {
			return out, err
		}
		if overage {
			if over, err = tx.OverageInstances(lic.ID, now, timeout); err != nil {
				return out, err
			}
		}
	}
	event := EventActivationRefreshed
	if reclaim {
		event = EventActivationCreated
		act.DeactivatedAt = nil
	}
	if !renewal && !reclaim {
		if used >= lic.SeatCap() {
			return out, Errorf(CodeTooManyInstances, "all %s of this license are in use (a seat is free %s after its holder last renewed it, or when the lease it was given ends if that is sooner, whether or not its instance gave it back; an instance that comes back after its seat was freed needs a free one): deactivate an instance (manage-licenses deactivate frees its seat at once), wait for a dead instance's seat to free itself, or raise max instances (manage-licenses update-license --max-instances)", seatsText(lic), lic.SeatTimeout())
		}
		// The churn limit: seats newly taken per rolling 24 hours. Holders
		// renewing their seat are never counted.
		dayAgo := now.Add(-24 * time.Hour)
		granted, oldest, err := tx.SeatGrants(lic.ID, dayAgo)
		if err != nil {
			return out, err
		}
		if limit := lic.ActivationsPerDay(); int64(granted) >= limit {
			e := Errorf(CodeTooManyActivations, "this license took %d new instance seats in the last 24 hours, its limit: retry later, or ask your vendor to raise max activations per day", limit)
			e.RetryAfter = oldest.Add(24 * time.Hour).Sub(now)
			return out, e
		}
		if err := tx.AddSeatGrant(lic.ID, now, dayAgo); err != nil {
			return out, err
		}
		event = EventActivationCreated
		if !existing {
			act = Activation{LicenseID: lic.ID, CustomerID: lic.CustomerID, InstanceID: r.InstanceID, FirstSeen: now}
		}
		// A new seat is above max instances when the seats within it
		// are all taken.
		act.Overage = used-over >= int(lic.MaxInstances)
		used++
		act.DeactivatedAt = nil
	} else if overage {
		// A renewal: the seat is above max instances when the other
		// seats within it fill max instances. So an overage seat moves
		// into a seat within max that came free, and, when max
		// instances was lowered, seats within it become overage seats
		// as they renew, until exactly max instances are not.
		within := used - over
		if !act.Overage {
			within-- // this seat, counted in used and not in over
		}
		act.Overage = within >= int(lic.MaxInstances)
	}
	if lease <= 0 {
		lease = time.Duration(lic.LeaseSeconds) * time.Second
	}
	// A lease never outlives the license's grace, nor the key it was asked
	// with (an older key of a renewed license expires before the license)
	// and its grace.
	expires := now.Add(lease)
	if end := out.GraceEndsAt(); expires.After(end) {
		expires = end
	}
	act.Kind, act.LeaseIssuedAt, act.LeaseExpiresAt, act.LastSeen = kind, &now, &expires, now
	act.SeatTimeout = time.Duration(lic.SeatTimeoutSeconds) * time.Second
	if r.IPAddress != "" {
		act.IPAddress = r.IPAddress
	}
	if err := tx.PutActivation(act); err != nil {
		return out, err
	}
	lic.ActiveInstances = used
	out = Check{Claims: claims, License: lic, Activation: &act, Changed: true, Renewed: renewal, At: now}
	detail := r.IPAddress
	if kind == KindOffline {
		detail = "offline lease until " + expires.Format(time.RFC3339)
	}
	return out, s.event(tx, now, event, Event{CustomerID: lic.CustomerID, LicenseID: lic.ID, InstanceID: r.InstanceID, Detail: detail})
}

// Validate verifies the key and checks the license. With an instance id it
// is a heartbeat: an instance holding a seat gets its lease renewed once
// past renew-after (else its current lease, with no write), and its
// last-seen time refreshed at most once per HeartbeatInterval. An instance
// whose lease ran out takes a seat again if one is free. An instance that
// holds no seat (never activated, or deactivated since) is refused with
// NO_SEAT: validate never says VALID about an instance without a lease.
// Without an instance id it answers for the key alone.
func (s *Service) Validate(ctx context.Context, r SeatRequest) (Check, error) {
	if err := r.validate(false); err != nil {
		s.noteRefusal(err)
		return Check{}, err
	}
	var out Check
	var due bool
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		out, due, err = s.check(tx, r)
		return err
	})
	if err != nil || !due {
		s.noteRefusal(err)
		return out, err
	}
	err = s.seatUpdate(ctx, func(tx Tx) (bool, error) {
		var err error
		if out, due, err = s.check(tx, r); err != nil || !due {
			return false, err
		}
		now := s.now()
		act := *out.Activation
		if act.Holds(now) && now.Before(act.LeaseRenewAfter()) {
			// Only the heartbeat is due: the lease stands.
			act.LastSeen = now
			if r.IPAddress != "" {
				act.IPAddress = r.IPAddress
			}
			out.Activation, out.Changed = &act, true
			return true, tx.PutActivation(act)
		}
		out, err = s.takeSeat(tx, out.License, out.Claims, r, act, true, now, KindOnline, 0)
		return out.Changed, err
	})
	return out, err
}

// check verifies and checks a license; due reports an instance whose lease
// or heartbeat needs a write.
func (s *Service) check(tx Tx, r SeatRequest) (Check, bool, error) {
	now := s.now()
	lic, claims, err := s.licenseByKey(tx, r.Key)
	out := Check{Claims: claims, License: lic, At: now}
	if err != nil {
		return out, false, err
	}
	if err := usable(lic, now); err != nil {
		return out, false, err
	}
	if r.InstanceID == "" {
		return out, false, nil
	}
	act, err := tx.Activation(lic.ID, r.InstanceID)
	if ErrorCode(err) == CodeNotFound {
		return out, false, errNoSeat(r.InstanceID)
	}
	if err != nil {
		return Check{}, false, err
	}
	if act.DeactivatedAt != nil {
		return out, false, errNoSeat(r.InstanceID)
	}
	out.Activation = &act
	due := !act.Holds(now) || !now.Before(act.LeaseRenewAfter()) || now.Sub(act.LastSeen) >= HeartbeatInterval
	return out, due, nil
}

func errNoSeat(instance string) error {
	return Errorf(CodeNoSeat, "instance %q holds no seat on this license (never activated, or deactivated): activate it to take a seat", instance)
}

// Deactivate gives an instance's seat back. It works whatever the
// license's status, so that seats can always be released. The seat is free
// for another instance once the lease the instance was given ends (at
// once with Immediate, the operator's choice, or when it holds no live
// lease). Deactivating again succeeds and changes nothing, but for the
// operator's, which frees a seat still taken by its lease.
func (s *Service) Deactivate(ctx context.Context, r SeatRequest) (Check, error) {
	if err := r.validate(true); err != nil {
		return Check{}, err
	}
	var out Check
	err := s.seatUpdate(ctx, func(tx Tx) (bool, error) {
		now := s.now()
		var lic License
		var claims licensekey.Claims
		var err error
		if r.Immediate && !strings.HasPrefix(strings.TrimSpace(r.Key), "CAIO-") {
			// The operator may name the license by its id: they free a seat
			// they see in a listing, without handling the customer's key.
			lic, err = s.resolveLicense(tx, r.Key)
		} else {
			lic, claims, err = s.licenseByKey(tx, r.Key)
		}
		out = Check{Claims: claims, License: lic, At: now}
		if err != nil {
			return false, err
		}
		act, err := tx.Activation(lic.ID, r.InstanceID)
		if ErrorCode(err) == CodeNotFound {
			return false, Errorf(CodeNotFound, "instance %q has no activation on this license", r.InstanceID)
		}
		if err != nil {
			return false, err
		}
		out.Activation = &act
		releasing := act.DeactivatedAt != nil && act.DeactivatedAt.After(now)
		if act.DeactivatedAt != nil && !(r.Immediate && releasing) {
			return false, nil
		}
		// The instance's own deactivation keeps the seat taken until its
		// lease ends (or its seat times out, if that is earlier); the
		// operator's frees it now.
		until, detail := now, ""
		if !r.Immediate && act.Holds(now) {
			until = act.SeatEnd()
			detail = "seat taken until its lease ends " + until.Format(time.RFC3339)
			if until.Before(*act.LeaseExpiresAt) {
				detail = "seat taken until it times out " + until.Format(time.RFC3339)
			}
		}
		act.DeactivatedAt = &until
		if err := tx.PutActivation(act); err != nil {
			return false, err
		}
		out.Changed = true
		return true, s.event(tx, now, EventActivationDeactivated, Event{CustomerID: lic.CustomerID, LicenseID: lic.ID, InstanceID: r.InstanceID, Detail: detail})
	})
	return out, err
}

// Activations lists the activations of one license (a key or license id),
// or of all licenses when ref is empty.
func (s *Service) Activations(ctx context.Context, ref string) ([]Activation, error) {
	var out []Activation
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		id, err := s.optionalLicenseID(tx, ref)
		if err != nil {
			return err
		}
		out, err = tx.Activations(id)
		return err
	})
	return out, err
}
