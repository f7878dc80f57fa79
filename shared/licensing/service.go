package licensing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

// SettingKDFSalt names the per-database salt of the secret-derived key.
const SettingKDFSalt = "kdf_salt"

// Config wires a Service.
type Config struct {
	Store Store
	// Actor names who acts, for the event log: "cli:generate-license", "function:activate".
	Actor string
	// Secret unlocks the signing key and sealed license keys. Only the
	// operations that mint or reveal keys need it.
	Secret string
	// PublicKeys, when set, are the only keys accepted when verifying; when
	// nil the database's public keys are used.
	PublicKeys licensekey.PublicKeys
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Service carries out licensing operations.
type Service struct {
	cfg Config

	mu       sync.Mutex // guards the derived-key cache
	sealSalt []byte
	sealKey  *secretbox.Key
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

func (s *Service) event(tx Tx, at time.Time, kind string, e Event) error {
	e.At, e.Kind, e.Actor = at, kind, s.cfg.Actor
	return tx.AppendEvent(e)
}

// sealingKey derives (once per salt) the key that seals secrets in this database.
func (s *Service) sealingKey(tx Tx) (*secretbox.Key, error) {
	if s.cfg.Secret == "" {
		return nil, Errorf(CodeSecretRequired, "this command needs the signing secret: set CAIO_LICENSE_SECRET (or pass --secret)")
	}
	salt, err := tx.Setting(SettingKDFSalt)
	if err != nil {
		return nil, err
	}
	if len(salt) == 0 {
		return nil, Errorf(CodeDBOutdated, "database has no key-derivation salt: run 'manage-licenses init-db'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealKey != nil && string(s.sealSalt) == string(salt) {
		return s.sealKey, nil
	}
	key, err := secretbox.Derive(s.cfg.Secret, salt)
	if err != nil {
		return nil, err
	}
	s.sealSalt, s.sealKey = append([]byte(nil), salt...), key
	return key, nil
}

func signingKeyAAD(kid string) []byte { return []byte("signing-key:" + kid) }
func licenseKeyAAD(id string) []byte  { return []byte("license-key:" + id) }

// signer returns the database's current signing key, creating it on first use.
func (s *Service) signer(tx Tx, now time.Time) (ed25519.PrivateKey, *secretbox.Key, error) {
	box, err := s.sealingKey(tx)
	if err != nil {
		return nil, nil, err
	}
	keys, err := tx.SigningKeys()
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		kid := licensekey.KeyID(pub)
		err = tx.InsertSigningKey(SigningKey{
			KeyID: kid, PublicKey: pub, CreatedAt: now,
			SealedPrivateKey: box.Seal(priv.Seed(), signingKeyAAD(kid)),
		})
		if err != nil {
			return nil, nil, err
		}
		return priv, box, s.event(tx, now, EventSigningKeyCreated, Event{Detail: "key id " + kid})
	}
	latest := keys[len(keys)-1]
	seed, err := box.Open(latest.SealedPrivateKey, signingKeyAAD(latest.KeyID))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, nil, Errorf(CodeSecretMismatch, "CAIO_LICENSE_SECRET does not match the secret this database was set up with: use the original secret")
	}
	return ed25519.NewKeyFromSeed(seed), box, nil
}

// verificationKeys are the configured public keys, else the database's.
func (s *Service) verificationKeys(tx Tx) (licensekey.PublicKeys, error) {
	if s.cfg.PublicKeys != nil {
		return s.cfg.PublicKeys, nil
	}
	keys := licensekey.PublicKeys{}
	if tx == nil {
		return keys, nil
	}
	stored, err := tx.SigningKeys()
	if err != nil {
		return nil, err
	}
	for _, k := range stored {
		keys.Add(ed25519.PublicKey(k.PublicKey))
	}
	return keys, nil
}

func verify(key string, keys licensekey.PublicKeys) (licensekey.Claims, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return licensekey.Claims{}, Errorf(CodeBadRequest, "a license key is required")
	}
	claims, err := licensekey.Verify(key, keys)
	switch {
	case errors.Is(err, licensekey.ErrMalformed):
		return claims, Wrap(CodeInvalidKey, err, "license key is malformed: check that it was copied whole (it starts with %s)", licensekey.Prefix)
	case errors.Is(err, licensekey.ErrUnknownSigningKey):
		return claims, Wrap(CodeInvalidKey, err, "license key was not issued by this license server (unknown signing key %s)", claims.KeyID)
	case err != nil:
		return claims, Wrap(CodeInvalidKey, err, "license key has been altered: its signature does not verify")
	}
	return claims, nil
}

// licenseByKey verifies key and finds its license.
func (s *Service) licenseByKey(tx Tx, key string) (License, licensekey.Claims, error) {
	keys, err := s.verificationKeys(tx)
	if err != nil {
		return License{}, licensekey.Claims{}, err
	}
	claims, err := verify(key, keys)
	if err != nil {
		return License{}, claims, err
	}
	lk, err := tx.LicenseKey(licensekey.Digest(strings.TrimSpace(key)))
	if ErrorCode(err) == CodeNotFound {
		return License{}, claims, Errorf(CodeNotFound, "license key is not known to this license server")
	}
	if err != nil {
		return License{}, claims, err
	}
	lic, err := tx.License(lk.LicenseID)
	return lic, claims, err
}

// resolveLicense accepts a license key or a license id.
func (s *Service) resolveLicense(tx Tx, ref string) (License, error) {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "CAIO-") {
		lic, _, err := s.licenseByKey(tx, ref)
		return lic, err
	}
	if _, err := hex.DecodeString(ref); err != nil || len(ref) != 32 {
		return License{}, Errorf(CodeBadRequest, "%q is neither a license key (CAIO-v1-...) nor a license id (32 hex digits)", ref)
	}
	lic, err := tx.License(ref)
	if ErrorCode(err) == CodeNotFound {
		return License{}, Errorf(CodeNotFound, "license %s not found: see 'manage-licenses list-licenses'", ref)
	}
	return lic, err
}

// optionalLicenseID resolves ref (a key or license id) to a license id;
// an empty ref stays empty, meaning every license.
func (s *Service) optionalLicenseID(tx Tx, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	lic, err := s.resolveLicense(tx, ref)
	return lic.ID, err
}

// usable reports why a license may not be used now, or nil.
func usable(lic License, now time.Time) error {
	switch lic.EffectiveStatus(now) {
	case StatusRevoked:
		return Errorf(CodeRevoked, "license has been revoked: contact your vendor")
	case StatusSuspended:
		return Errorf(CodeSuspended, "license is suspended: contact your vendor")
	case StatusExpired:
		return Errorf(CodeExpired, "license expired on %s: renew it with your vendor", lic.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

func newLicenseID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
