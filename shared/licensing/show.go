package licensing

import (
	"context"
	"time"
)

// LicenseDetail is everything about one license.
type LicenseDetail struct {
	LicenseView
	Keys        []IssuedKey  `json:"keys"`
	Activations []Activation `json:"activations"`
	Deliveries  []Delivery   `json:"deliveries"`
	Events      []Event      `json:"last_events"`
}

// IssuedKey is one key issued for a license: its digest's first digits
// (enough to tell keys apart), its dates, and the key itself only when
// asked for with the secret.
type IssuedKey struct {
	ID        string    `json:"id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Key       string    `json:"license_key,omitempty"`
}

// detailEvents is how many of the latest events ShowLicense gives.
const detailEvents = 20

// ShowLicense gathers a license (a key or id) with its keys, seats,
// deliveries and latest events. With withKeys (which needs the secret)
// the keys themselves are included.
func (s *Service) ShowLicense(ctx context.Context, ref string, withKeys bool) (LicenseDetail, error) {
	var d LicenseDetail
	now := s.now()
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		lic, err := s.resolveLicense(tx, ref)
		if err != nil {
			return err
		}
		lics := []License{lic}
		if err := fillSeats(tx, lics, now); err != nil {
			return err
		}
		d.LicenseView = LicenseView{License: lics[0], EffectiveStatus: lic.EffectiveStatus(now)}
		keys, err := tx.LicenseKeys(lic.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ik := IssuedKey{ID: k.Digest[:12], IssuedAt: k.IssuedAt, ExpiresAt: k.ExpiresAt}
			if withKeys {
				box, err := s.keys.sealingKey(tx)
				if err != nil {
					return err
				}
				key, err := box.Open(k.Sealed, licenseKeyAAD(lic.ID))
				if err != nil {
					return errSecretMismatch()
				}
				ik.Key = string(key)
			}
			d.Keys = append(d.Keys, ik)
		}
		if d.Activations, err = tx.Activations(lic.ID); err != nil {
			return err
		}
		if d.Deliveries, err = tx.Deliveries(lic.ID); err != nil {
			return err
		}
		evs, err := tx.Events(EventFilter{LicenseID: lic.ID})
		if err != nil {
			return err
		}
		d.Events = evs[max(0, len(evs)-detailEvents):]
		return nil
	})
	return d, err
}
