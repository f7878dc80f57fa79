package licensing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

// Settings of the secret-derived sealing key: a per-database random salt and
// the key-derivation parameters (absent: secretbox.LegacyKDF).
const (
	SettingKDFSalt   = "kdf_salt"
	SettingKDFParams = "kdf_params"
)

// EventSecretRotated records a rotate-secret.
const EventSecretRotated = "secret.rotated"

func (s *Service) warn(msg string) {
	if s.cfg.Warn == nil {
		return
	}
	if _, done := s.warned.LoadOrStore(msg, true); !done {
		s.cfg.Warn(msg)
	}
}

func errSecretMismatch() error {
	return Errorf(CodeSecretMismatch, "the signing secret given does not match the secret this database was set up with: use the original secret")
}

// sealingKey derives (once per salt and parameters) the key that seals
// secrets in this database.
func (s *Service) sealingKey(tx Tx) (*secretbox.Key, error) {
	if s.cfg.Secret == "" {
		return nil, Errorf(CodeSecretRequired, "this command needs the signing secret: set CAIO_LICENSE_SECRET or pass --secret-file")
	}
	salt, err := tx.Setting(SettingKDFSalt)
	if err != nil {
		return nil, err
	}
	if len(salt) == 0 {
		return nil, Errorf(CodeDBOutdated, "database has no key-derivation salt: run 'manage-licenses init-db'")
	}
	params, err := tx.Setting(SettingKDFParams)
	if err != nil {
		return nil, err
	}
	kdf, err := secretbox.ParseKDF(string(params))
	if err != nil {
		return nil, Wrap(CodeDBInvalid, err, "the database's key-derivation parameters %q are not valid: restore the database from a backup", params)
	}
	return s.derive(kdf, s.cfg.Secret, salt)
}

func (s *Service) derive(kdf secretbox.KDF, secret string, salt []byte) (*secretbox.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealKey != nil && bytes.Equal(s.sealSalt, salt) && s.sealKDF == kdf.String() {
		return s.sealKey, nil
	}
	key, err := secretbox.DeriveWith(kdf, secret, salt)
	if err != nil {
		return nil, err
	}
	s.sealSalt, s.sealKDF, s.sealKey = append([]byte(nil), salt...), kdf.String(), key
	return key, nil
}

// A signing key is sealed as the whole Ed25519 private key (seed and public
// key) with its key id as associated data: the public key is part of the
// sealed, authenticated record, so the public-key column can be checked
// against it.
func signingKeyAAD(kid string) []byte { return []byte("signing-key:v2:" + kid) }

// legacySigningKeyAAD is how seeds alone were sealed before.
func legacySigningKeyAAD(kid string) []byte { return []byte("signing-key:" + kid) }

func sealSigningKey(box *secretbox.Key, kid string, priv ed25519.PrivateKey) []byte {
	return box.Seal(priv, signingKeyAAD(kid))
}

func licenseKeyAAD(id string) []byte { return []byte("license-key:" + id) }

// openSigningKey opens a sealed signing key and proves that its stored
// public key is the private key's own: a public key planted in the database
// (by anyone who can write the file) has no sealed private key that opens
// under the secret and matches.
func openSigningKey(box *secretbox.Key, k SigningKey) (ed25519.PrivateKey, error) {
	var priv ed25519.PrivateKey
	if sealed, err := box.Open(k.SealedPrivateKey, signingKeyAAD(k.KeyID)); err == nil && len(sealed) == ed25519.PrivateKeySize {
		priv = ed25519.PrivateKey(sealed)
	} else if seed, err := box.Open(k.SealedPrivateKey, legacySigningKeyAAD(k.KeyID)); err == nil && len(seed) == ed25519.SeedSize {
		priv = ed25519.NewKeyFromSeed(seed)
	} else {
		return nil, errSecretMismatch()
	}
	derived := ed25519.NewKeyFromSeed(priv.Seed())
	pub := derived.Public().(ed25519.PublicKey)
	if !bytes.Equal(derived, priv) || !bytes.Equal(pub, k.PublicKey) || licensekey.KeyID(pub) != k.KeyID {
		return nil, Errorf(CodeDBInvalid, "signing key %s in the database does not match its sealed private key: the database was changed outside manage-licenses; restore it from a backup", k.KeyID)
	}
	return derived, nil
}

// provenKeys opens every signing key with the secret and returns the
// private keys, oldest first (each public key is thereby proven), and the
// sealing key that opened them.
func (s *Service) provenKeys(tx Tx) ([]SigningKey, []ed25519.PrivateKey, *secretbox.Key, error) {
	keys, err := tx.SigningKeys()
	if err != nil {
		return nil, nil, nil, err
	}
	return s.proveKeys(tx, keys)
}

// proveKeys is provenKeys for the signing keys already read.
func (s *Service) proveKeys(tx Tx, keys []SigningKey) ([]SigningKey, []ed25519.PrivateKey, *secretbox.Key, error) {
	box, err := s.sealingKey(tx)
	if err != nil {
		return nil, nil, nil, err
	}
	// The same sealed records opened by the same key were proven already:
	// opening and re-deriving each key costs more than the rest of a check.
	fp := provenFingerprint(keys)
	s.mu.Lock()
	if p := s.proven; p != nil && p.box == box && p.fp == fp {
		s.mu.Unlock()
		return keys, p.privs, box, nil
	}
	s.mu.Unlock()
	privs := make([]ed25519.PrivateKey, len(keys))
	var refused []string
	for i, k := range keys {
		privs[i], err = openSigningKey(box, k)
		switch {
		case ErrorCode(err) == CodeSecretMismatch:
			refused = append(refused, k.KeyID)
		case err != nil:
			return nil, nil, nil, err
		}
	}
	switch {
	case len(refused) == len(keys) && len(keys) > 0:
		return nil, nil, nil, errSecretMismatch()
	case len(refused) > 0:
		// The secret opens the others: these were put there by someone
		// who does not have it.
		return nil, nil, nil, Errorf(CodeDBInvalid, "the database holds signing key %s, which the secret does not open while it opens the others: it was added outside manage-licenses; restore the database from a backup", strings.Join(refused, ", "))
	}
	if len(keys) > 0 {
		s.warnIfWeak(tx)
		if s.cfg.OnProven != nil {
			pubs := make([]ed25519.PublicKey, len(keys))
			for i, k := range keys {
				pubs[i] = ed25519.PublicKey(k.PublicKey)
			}
			s.cfg.OnProven(pubs)
		}
	}
	s.mu.Lock()
	s.proven = &provenSet{fp: fp, box: box, privs: privs}
	s.mu.Unlock()
	return keys, privs, box, nil
}

// hasProven reports whether the secret has opened the signing keys yet.
func (s *Service) hasProven() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proven != nil
}

// provenSet is the last set of signing keys the secret opened.
type provenSet struct {
	fp    string
	box   *secretbox.Key
	privs []ed25519.PrivateKey
}

func provenFingerprint(keys []SigningKey) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.KeyID)
		b.WriteByte(0)
		b.Write(k.PublicKey)
		b.WriteByte(0)
		b.Write(k.SealedPrivateKey)
		b.WriteByte(0)
	}
	return b.String()
}

// warnIfWeak warns, on each use, when the secret that unlocked the keys (or
// the derivation that sealed them) is weaker than a new database accepts.
func (s *Service) warnIfWeak(tx Tx) {
	if err := s.secretWeakness(); err != nil {
		s.warn("this database's signing key is sealed under a weak secret (" + err.Error() + "): run 'manage-licenses rotate-secret' to re-seal it under a strong one")
		return
	}
	params, _ := tx.Setting(SettingKDFParams)
	if kdf, err := secretbox.ParseKDF(string(params)); err == nil && kdf.Weak() {
		s.warn("this database's signing key is sealed with an older, cheaper key derivation (" + kdf.String() + "): run 'manage-licenses rotate-secret' to re-seal it with " + secretbox.DefaultKDF.String())
	}
}

// MinSecretLen is the shortest secret any service accepts for sealing.
const MinSecretLen = 32

// minimumPolicy is the rule when no SecretPolicy is configured: length
// only. The CLI and the functions that mint keys configure
// secretstrength.Check, which also estimates guessability; it is not the
// default because its dictionaries cost every binary that links it 15 ms
// and 10 MB at start, the activate function's cold start included.
func minimumPolicy(secret string) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("the signing secret is %d characters long; it must be at least %d characters of random text: make one with 'manage-licenses new-secret' (or: openssl rand -base64 32)", len(secret), MinSecretLen)
	}
	return nil
}

func (s *Service) policy() func(string) error {
	if s.cfg.SecretPolicy != nil {
		return s.cfg.SecretPolicy
	}
	return minimumPolicy
}

// secretWeakness judges the secret once per service (zxcvbn takes
// milliseconds; a server proves keys on every request).
func (s *Service) secretWeakness() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.judged == nil || s.judged.secret != s.cfg.Secret {
		s.judged = &judgement{secret: s.cfg.Secret, err: s.policy()(s.cfg.Secret)}
	}
	return s.judged.err
}

type judgement struct {
	secret string
	err    error
}

// signer returns the database's current signing key, creating it on first
// use. A new signing key is made only under a strong secret.
func (s *Service) signer(tx Tx, now time.Time) (ed25519.PrivateKey, *secretbox.Key, error) {
	if s.cfg.Secret == "" {
		return nil, nil, Errorf(CodeSecretRequired, "this command needs the signing secret: set CAIO_LICENSE_SECRET or pass --secret-file")
	}
	existing, err := tx.SigningKeys()
	if err != nil {
		return nil, nil, err
	}
	if len(existing) > 0 {
		_, privs, box, err := s.provenKeys(tx)
		if err != nil {
			return nil, nil, err
		}
		return privs[len(privs)-1], box, nil
	}
	if err := s.secretWeakness(); err != nil {
		return nil, nil, Errorf(CodeWeakSecret, "refusing to create the signing key: %v", err)
	}
	// Nothing is sealed yet: start with a fresh salt and today's derivation.
	if err := tx.PutSetting(SettingKDFSalt, secretbox.NewSalt()); err != nil {
		return nil, nil, err
	}
	if err := tx.PutSetting(SettingKDFParams, []byte(secretbox.DefaultKDF.String())); err != nil {
		return nil, nil, err
	}
	box, err := s.sealingKey(tx)
	if err != nil {
		return nil, nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	kid := licensekey.KeyID(pub)
	err = tx.InsertSigningKey(SigningKey{
		KeyID: kid, PublicKey: pub, CreatedAt: now,
		SealedPrivateKey: sealSigningKey(box, kid, priv),
	})
	if err != nil {
		return nil, nil, err
	}
	// A key this command made is as proven as one the secret opened: the
	// next command on this machine verifies with it without the secret.
	if s.cfg.OnProven != nil {
		s.cfg.OnProven([]ed25519.PublicKey{pub})
	}
	return priv, box, s.event(tx, now, EventSigningKeyCreated, Event{Detail: "key id " + kid})
}

// verificationKeys are the keys a key's signature is checked against: the
// pinned ones when configured; else the database's, proven with the secret;
// else those the secret proved earlier on this machine; else, only where
// the caller opted in (serve), the database's unproven.
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
	switch {
	case s.remembersAll(stored):
		// Proven on this machine before: deriving the sealing key again
		// (about a second and 300 MB) would prove nothing new.
		return s.cfg.RememberedKeys, nil
	case s.cfg.Secret != "":
		stored, _, _, err = s.proveKeys(tx, stored)
	case len(s.cfg.RememberedKeys) > 0:
		return s.cfg.RememberedKeys, nil
	case s.cfg.TrustUnprovenKeys:
	default:
		return nil, Errorf(CodePublicKeyRequired, "cannot tell genuine license keys from forged ones without a trusted public key: set CAIO_LICENSE_PUBLIC_KEY to the key 'manage-licenses public-key' prints with the secret, or give the signing secret (CAIO_LICENSE_SECRET or --secret-file) once on this machine")
	}
	if err != nil {
		return nil, err
	}
	for _, k := range stored {
		keys.Add(ed25519.PublicKey(k.PublicKey))
	}
	return keys, nil
}

// remembersAll reports whether every one of the database's signing keys is
// one this machine remembers as proven, with the same public key.
func (s *Service) remembersAll(stored []SigningKey) bool {
	if len(s.cfg.RememberedKeys) == 0 || len(stored) == 0 {
		return false
	}
	for _, k := range stored {
		known, ok := s.cfg.RememberedKeys[k.KeyID]
		if !ok || !known.Equal(ed25519.PublicKey(k.PublicKey)) {
			return false
		}
	}
	return true
}

// TrustedPublicKeys are the keys this service verifies with: the pinned
// ones, else the database's proven with the secret (see verificationKeys).
// serve asks once at start and then pins them, so that it keeps no secret.
func (s *Service) TrustedPublicKeys(ctx context.Context) (licensekey.PublicKeys, error) {
	var keys licensekey.PublicKeys
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		keys, err = s.verificationKeys(tx)
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
		if s.cfg.Secret == "" {
			// Proven on this machine before (or made here): as good as now.
			if known, ok := s.cfg.RememberedKeys[latest.KeyID]; ok && known.Equal(info.PublicKey) {
				info.Verified = true
			}
			return nil
		}
		if _, _, _, err := s.provenKeys(tx); err != nil {
			return err
		}
		info.Verified = true
		return nil
	})
	if err != nil || info.PublicKey != nil {
		return info, err
	}
	if s.cfg.Secret == "" {
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
	if err := s.policy()(newSecret); err != nil {
		return res, Errorf(CodeWeakSecret, "refusing the new secret: %v", err)
	}
	now := s.now()
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		res = RotationResult{KDF: secretbox.DefaultKDF.String()}
		keys, privs, old, err := s.provenKeys(tx)
		if err != nil {
			return err
		}
		licenseKeys, err := tx.AllLicenseKeys()
		if err != nil {
			return err
		}
		plain := make([][]byte, len(licenseKeys))
		for i, lk := range licenseKeys {
			if plain[i], err = old.Open(lk.Sealed, licenseKeyAAD(lk.LicenseID)); err != nil {
				return errSecretMismatch()
			}
		}
		salt := secretbox.NewSalt()
		box, err := secretbox.DeriveWith(secretbox.DefaultKDF, newSecret, salt)
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := tx.ResealSigningKey(k.KeyID, sealSigningKey(box, k.KeyID, privs[i])); err != nil {
				return err
			}
		}
		for i, lk := range licenseKeys {
			if err := tx.ResealLicenseKey(lk.Digest, box.Seal(plain[i], licenseKeyAAD(lk.LicenseID))); err != nil {
				return err
			}
		}
		if err := tx.PutSetting(SettingKDFSalt, salt); err != nil {
			return err
		}
		if err := tx.PutSetting(SettingKDFParams, []byte(res.KDF)); err != nil {
			return err
		}
		res.SigningKeys, res.LicenseKeys = len(keys), len(licenseKeys)
		return s.event(tx, now, EventSecretRotated, Event{Detail: fmt.Sprintf("re-sealed %d signing keys and %d license keys with %s", len(keys), len(licenseKeys), res.KDF)})
	})
	if err != nil {
		return RotationResult{}, err
	}
	// From now on this service works under the new secret.
	s.mu.Lock()
	s.cfg.Secret, s.sealKey = newSecret, nil
	s.mu.Unlock()
	return res, nil
}
