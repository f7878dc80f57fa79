package licensing

import (
	"context"
	"crypto/ed25519"
	"time"
)

// fillSeats sets each license's seats in use at now.
func fillSeats(tx Tx, lics []License, now time.Time) error {
	seats, err := tx.SeatCounts(now)
	for i := range lics {
		lics[i].ActiveInstances = seats[lics[i].ID].Live
	}
	return err
}

// LicenseView is a license with its effective status.
type LicenseView struct {
	License
	EffectiveStatus Status `json:"effective_status"`
}

// Licenses lists licenses; status may be grace or expired, which are
// resolved here.
func (s *Service) Licenses(ctx context.Context, customerID string, status Status) ([]LicenseView, error) {
	switch status {
	case "", StatusActive, StatusGrace, StatusExpired, StatusSuspended, StatusRevoked:
	default:
		return nil, badRequest("unknown status %q: use active, grace, expired, suspended or revoked", status)
	}
	now := s.now()
	out := []LicenseView{}
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		f := LicenseFilter{CustomerID: customerID, Status: status}
		if status == StatusExpired || status == StatusGrace {
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
		box, err := s.keys.sealingKey(tx)
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
