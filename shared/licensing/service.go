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
	"github.com/caio-licensing/caio-licensing/shared/metrics"
)

// Config wires a Service.
type Config struct {
	Store Store
	// Actor names who acts, for the event log: "cli:generate-license", "function:activate".
	Actor string
	// Secret unlocks the signing key and sealed license keys. Only the
	// operations that mint or reveal keys need it.
	Secret string
	// PublicKeys, when set, are the only keys accepted when verifying
	// (pinned). When nil, the database's public keys are used once proven
	// with Secret; see verificationKeys.
	PublicKeys licensekey.PublicKeys
	// RememberedKeys are keys the secret proved earlier on this machine (the
	// CLI's trusted-keys file); they are trusted when the secret is absent.
	RememberedKeys licensekey.PublicKeys
	// OnProven receives the public keys each time the secret proves them.
	OnProven func([]ed25519.PublicKey)
	// TrustUnprovenKeys lets a service without pinned keys or the secret
	// verify with the database's public keys as they are (serve, with a
	// warning at start). Anyone who can write the database can add one.
	TrustUnprovenKeys bool
	// SecretPolicy judges secrets before a signing key is sealed under
	// them (secretstrength.Check); nil means length only.
	SecretPolicy func(string) error
	// Warn receives warnings for the operator (a weak secret, say); nil
	// discards them.
	Warn func(string)
	// Metrics receives counts (emails sent, failed, skipped); nil for none.
	Metrics metrics.Sink
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Service carries out licensing operations. What the secret opens, and
// which keys it trusts, is its keyring's.
type Service struct {
	cfg  Config
	keys *keyring

	warned   sync.Map     // warnings already given, once per service
	refusals refusalTally // refusals not yet recorded (see refusals.go)
}

// Metrics is the service's metrics sink (nil for none).
func (s *Service) Metrics() metrics.Sink { return s.cfg.Metrics }

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg}
	s.keys = newKeyring(cfg, s.warn)
	s.cfg.Secret = "" // the keyring's alone: rotation changes it there
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

func (s *Service) event(tx Tx, at time.Time, kind string, e Event) error {
	e.At, e.Kind, e.Actor = at, kind, s.cfg.Actor
	return tx.AppendEvent(e)
}

func verify(key string, keys licensekey.PublicKeys) (licensekey.Claims, error) {
	key = licensekey.Canonical(key)
	if key == "" {
		return licensekey.Claims{}, Errorf(CodeBadRequest, "a license key is required")
	}
	claims, err := licensekey.Verify(key, keys)
	switch {
	case errors.Is(err, licensekey.ErrMalformed):
		return claims, Wrap(CodeInvalidKey, err, "license key is malformed: check that it was copied whole (it starts with %s)", licensekey.Prefix)
	case errors.Is(err, licensekey.ErrUnknownSigningKey):
		return claims, Wrap(CodeInvalidKey, err, "license key was not issued by this license server (it names signing key %s, which is not trusted here)", claims.KeyID)
	case err != nil:
		return claims, Wrap(CodeInvalidKey, err, "license key has been altered: its signature does not verify")
	}
	return claims, nil
}

// licenseByKey verifies key and finds its license.
func (s *Service) licenseByKey(tx Tx, key string) (License, licensekey.Claims, error) {
	keys, err := s.keys.verificationKeys(tx)
	if err != nil {
		return License{}, licensekey.Claims{}, err
	}
	claims, err := s.keys.verifyCached(key, keys)
	if err != nil {
		return License{}, claims, err
	}
	lic, err := tx.LicenseByKeyDigest(licensekey.Digest(key))
	if ErrorCode(err) == CodeNotFound {
		return License{}, claims, Errorf(CodeNotFound, "license key is not known to this license server")
	}
	return lic, claims, err
}

// MinIDPrefix is the shortest license id prefix accepted for an id (the
// tables print this many digits).
const MinIDPrefix = 8

func isHex(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F')
	})
}

// resolveLicense accepts a license key, a license id, or the start of one.
func (s *Service) resolveLicense(tx Tx, ref string) (License, error) {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "CAIO-") {
		return s.licenseByDigest(tx, ref)
	}
	if !isHex(ref) || len(ref) > 32 || len(ref) < MinIDPrefix {
		return License{}, Errorf(CodeBadRequest, "%q is neither a license key (CAIO-v1-...) nor a license id (32 hex digits, or its first %d or more as tables show)", ref, MinIDPrefix)
	}
	ref = strings.ToLower(ref)
	if len(ref) < 32 {
		// A short id, as tables print them: it must name one license.
		lics, err := tx.Licenses(LicenseFilter{IDPrefix: ref})
		switch {
		case err != nil:
			return License{}, err
		case len(lics) == 0:
			return License{}, Errorf(CodeNotFound, "no license id starts with %s: see 'manage-licenses list-licenses'", ref)
		case len(lics) > 1:
			return License{}, Errorf(CodeBadRequest, "%d license ids start with %s: give more digits", len(lics), ref)
		}
		return lics[0], nil
	}
	lic, err := tx.License(ref)
	if ErrorCode(err) == CodeNotFound {
		return License{}, Errorf(CodeNotFound, "license %s not found: see 'manage-licenses list-licenses'", ref)
	}
	return lic, err
}

// licenseByDigest finds the license a key names by the key's digest, without
// checking its signature: an operator naming a row of their own database.
// Only a key issued by this database has its digest there; whether a key is
// genuine is licenseByKey's question.
func (s *Service) licenseByDigest(tx Tx, key string) (License, error) {
	key = licensekey.Canonical(key)
	if _, err := licensekey.Parse(key); err != nil {
		_, err = verify(key, nil)
		return License{}, err
	}
	lk, err := tx.LicenseKey(licensekey.Digest(key))
	if ErrorCode(err) == CodeNotFound {
		return License{}, Errorf(CodeNotFound, "license key is not known to this license server")
	}
	if err != nil {
		return License{}, err
	}
	return tx.License(lk.LicenseID)
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
		if lic.GraceDays > 0 {
			return Errorf(CodeExpired, "license expired on %s, and its grace ended on %s: renew it with your vendor",
				lic.ExpiresAt.Format(time.RFC3339), lic.GraceEndsAt().Format(time.RFC3339))
		}
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
