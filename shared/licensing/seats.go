package licensing

import (
	"context"
	"time"

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
}

func (r SeatRequest) validate(instanceRequired bool) error {
	if r.InstanceID != "" || instanceRequired {
		if err := ValidateInstanceID(r.InstanceID); err != nil {
			return err
		}
	}
	return validateIP(r.IPAddress)
}

// Activate verifies the key, checks the license and takes (or refreshes) a
// seat for the instance, enforcing max instances.
func (s *Service) Activate(ctx context.Context, r SeatRequest) (Check, error) {
	if err := r.validate(true); err != nil {
		return Check{}, err
	}
	var out Check
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		now := s.now()
		lic, claims, err := s.licenseByKey(tx, r.Key)
		out = Check{Claims: claims, License: lic}
		if err != nil {
			return err
		}
		if err := usable(lic, now); err != nil {
			return err
		}
		act, err := tx.Activation(lic.ID, r.InstanceID)
		exists := err == nil
		if err != nil && ErrorCode(err) != CodeNotFound {
			return err
		}
		kind := EventActivationRefreshed
		if !exists || !act.Active() {
			used, err := tx.ActiveInstances(lic.ID)
			if err != nil {
				return err
			}
			if used >= int(lic.MaxInstances) {
				return Errorf(CodeTooManyInstances, "all %d instance seats of this license are in use: deactivate an instance or raise max instances", lic.MaxInstances)
			}
			kind = EventActivationCreated
			lic.ActiveInstances = used + 1
			if !exists {
				act = Activation{LicenseID: lic.ID, CustomerID: lic.CustomerID, InstanceID: r.InstanceID, FirstSeen: now}
			}
			act.DeactivatedAt = nil
		}
		act.LastSeen = now
		if r.IPAddress != "" {
			act.IPAddress = r.IPAddress
		}
		if err := tx.PutActivation(act); err != nil {
			return err
		}
		out = Check{Claims: claims, License: lic, Activation: &act, Changed: true}
		return s.event(tx, now, kind, Event{CustomerID: lic.CustomerID, LicenseID: lic.ID, InstanceID: r.InstanceID, Detail: r.IPAddress})
	})
	return out, err
}

// Validate verifies the key and checks the license. With an instance id it
// is a heartbeat: an instance holding a seat has its last-seen time
// refreshed, at most once per HeartbeatInterval.
func (s *Service) Validate(ctx context.Context, r SeatRequest) (Check, error) {
	if err := r.validate(false); err != nil {
		return Check{}, err
	}
	var out Check
	stale := false
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		out, stale, err = s.check(tx, r)
		return err
	})
	if err != nil || !stale {
		return out, err
	}
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		var err error
		if out, stale, err = s.check(tx, r); err != nil || !stale {
			return err
		}
		act := *out.Activation
		act.LastSeen = s.now()
		if r.IPAddress != "" {
			act.IPAddress = r.IPAddress
		}
		out.Activation, out.Changed = &act, true
		return tx.PutActivation(act)
	})
	return out, err
}

// check verifies and checks a license; stale reports a seat due a heartbeat.
func (s *Service) check(tx Tx, r SeatRequest) (Check, bool, error) {
	now := s.now()
	lic, claims, err := s.licenseByKey(tx, r.Key)
	out := Check{Claims: claims, License: lic}
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
		return out, false, nil
	}
	if err != nil {
		return Check{}, false, err
	}
	out.Activation = &act
	return out, act.Active() && now.Sub(act.LastSeen) >= HeartbeatInterval, nil
}

// Deactivate frees an instance's seat. It works whatever the license's
// status, so that seats can always be released. Deactivating an instance
// that already released its seat succeeds and changes nothing.
func (s *Service) Deactivate(ctx context.Context, r SeatRequest) (Check, error) {
	if err := r.validate(true); err != nil {
		return Check{}, err
	}
	var out Check
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		now := s.now()
		lic, claims, err := s.licenseByKey(tx, r.Key)
		out = Check{Claims: claims, License: lic}
		if err != nil {
			return err
		}
		act, err := tx.Activation(lic.ID, r.InstanceID)
		if ErrorCode(err) == CodeNotFound {
			return Errorf(CodeNotFound, "instance %q has no activation on this license", r.InstanceID)
		}
		if err != nil {
			return err
		}
		out.Activation = &act
		if !act.Active() {
			return nil
		}
		act.DeactivatedAt = &now
		if err := tx.PutActivation(act); err != nil {
			return err
		}
		out.Changed = true
		return s.event(tx, now, EventActivationDeactivated, Event{CustomerID: lic.CustomerID, LicenseID: lic.ID, InstanceID: r.InstanceID})
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
