package licensing

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

// The Service's operations on signing keys: the public key to pin, the keys
// it trusts, and rotating the secret. The key material itself is the
// keyring's (keyring.go).

// EventSecretRotated records a rotate-secret.
const EventSecretRotated = "secret.rotated"

// warn gives a warning to the operator once per service.
func (s *Service) warn(msg string) {
	if s.cfg.Warn == nil {
		return
	}
	if _, done := s.warned.LoadOrStore(msg, true); !done {
		s.cfg.Warn(msg)
	}
}

// signer returns the database's current signing key, creating it (and
// recording that) on first use.
func (s *Service) signer(tx Tx, now time.Time) (ed25519.PrivateKey, *secretbox.Key, error) {
	priv, box, created, err := s.keys.signingKey(tx, now)
	if err != nil || created == "" {
		return priv, box, err
	}
	return priv, box, s.event(tx, now, EventSigningKeyCreated, Event{Detail: "key id " + created})
}

// TrustedPublicKeys are the keys this service verifies with: the pinned
// ones, else the database's proven with the secret (see verificationKeys).
// serve asks once at start and then pins them, so that it keeps no secret.
func (s *Service) TrustedPublicKeys(ctx context.Context) (licensekey.PublicKeys, error) {
	var keys licensekey.PublicKeys
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		keys, err = s.keys.verificationKeys(tx)
		return err
	})
	return keys, err
}

// PublicKeyInfo is the current verification key and whether it was proven.
type PublicKeyInfo struct {
	PublicKey ed25519.PublicKey
	// Verified: the secret opened the sealed private key and it matches.
	Verified bool
}

// PublicKey returns the current verification key, creating the signing key
// first if the database has none (which needs a strong secret). With the
// secret at hand the key is proven before it is returned.
func (s *Service) PublicKey(ctx context.Context) (PublicKeyInfo, error) {
	var info PublicKeyInfo
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		keys, err := tx.SigningKeys()
		if err != nil || len(keys) == 0 {
			return err
		}
		latest := keys[len(keys)-1]
		info.PublicKey = ed25519.PublicKey(latest.PublicKey)
		if !s.keys.hasSecret() {
			// Proven on this machine before (or made here): as good as now.
			info.Verified = s.keys.remembers(latest)
			return nil
		}
		if _, _, _, err := s.keys.provenKeys(tx); err != nil {
			return err
		}
		info.Verified = true
		return nil
	})
	if err != nil || info.PublicKey != nil {
		return info, err
	}
	if !s.keys.hasSecret() {
		return info, Errorf(CodeSecretRequired, "this database has no signing key yet: give the signing secret (CAIO_LICENSE_SECRET or --secret-file) to create it")
	}
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		priv, _, err := s.signer(tx, s.now())
		if err == nil {
			info = PublicKeyInfo{PublicKey: priv.Public().(ed25519.PublicKey), Verified: true}
		}
		return err
	})
	return info, err
}

// RotationResult says what RotateSecret re-sealed.
type RotationResult struct {
	SigningKeys int    `json:"signing_keys"`
	LicenseKeys int    `json:"license_keys"`
	KDF         string `json:"kdf"`
}

// RotateSecret re-seals every sealed value (signing keys, stored license
// keys) under newSecret, with a fresh salt and today's key derivation, in
// one unit of work. No license key or public key changes; afterwards only
// newSecret opens the database.
func (s *Service) RotateSecret(ctx context.Context, newSecret string) (RotationResult, error) {
	var res RotationResult
	if err := s.keys.acceptable(newSecret); err != nil {
		return res, err
	}
	now := s.now()
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		var err error
		if res, err = s.keys.reseal(tx, newSecret); err != nil {
			return err
		}
		return s.event(tx, now, EventSecretRotated, Event{Detail: fmt.Sprintf("re-sealed %d signing keys and %d license keys with %s", res.SigningKeys, res.LicenseKeys, res.KDF)})
	})
	if err != nil {
		return RotationResult{}, err
	}
	// From now on this service works under the new secret.
	s.keys.use(newSecret)
	return res, nil
}
