package licensing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

// keyring holds what the signing secret opens and decides which public keys
// a license key is checked against. It derives the sealing key (once per
// salt and parameters: Argon2id costs about a second), opens and proves the
// sealed signing keys, judges the secret's strength, applies the trust
// policy (pinned, proven, remembered, or explicitly unproven keys), re-seals
// everything when the secret rotates, and remembers license keys already
// verified. It has a lock of its own: a server proves and verifies from
// many requests at once, and a rotation changes the secret under them.
//
// It reads and writes only key material (keyTx), inside the caller's unit
// of work; the domain's events about keys are the Service's to record.
type keyring struct {
	// Fixed at construction.
	pinned        licensekey.PublicKeys // when set, the only keys trusted
	remembered    licensekey.PublicKeys // proven earlier on this machine
	trustUnproven bool                  // serve without the secret: the database's keys as they are
	policy        func(string) error    // judges a secret before anything is sealed under it
	onProven      func([]ed25519.PublicKey)
	warn          func(string)

	deriving sync.Mutex // held through a derivation, not mu: requests go on meanwhile
	mu       sync.Mutex
	secret   string
	derived  map[string]*secretbox.Key // by KDF and salt; a rotation adds the new one
	judged   *judgement                // the secret's strength, judged once
	proven   *provenSet                // the signing keys the secret last opened

	verifiedMu sync.Mutex // its own: a verification never waits on a judgement
	verified   map[string]verifiedKey
}

// keyTx is what the keyring reads and writes: settings, signing keys and
// sealed license keys.
type keyTx interface {
	SettingTx
	KeyTx
	// Of LicenseTx, the sealed license keys only.
	AllLicenseKeys() ([]LicenseKey, error)
	ResealLicenseKey(digest string, sealed []byte) error
}

func newKeyring(cfg Config, warn func(string)) *keyring {
	k := &keyring{
		pinned: cfg.PublicKeys, remembered: cfg.RememberedKeys, trustUnproven: cfg.TrustUnprovenKeys,
		policy: cfg.SecretPolicy, onProven: cfg.OnProven, warn: warn, secret: cfg.Secret,
	}
	if k.policy == nil {
		k.policy = minimumPolicy
	}
	return k
}

func (k *keyring) currentSecret() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.secret
}

// hasSecret reports whether this keyring can open sealed values at all.
func (k *keyring) hasSecret() bool { return k.currentSecret() != "" }

// isSecret reports, in constant time, whether v is the signing secret.
func (k *keyring) isSecret(v string) bool {
	s := k.currentSecret()
	return s != "" && subtle.ConstantTimeCompare([]byte(v), []byte(s)) == 1
}

func errSecretRequired() error {
	return Errorf(CodeSecretRequired, "this command needs the signing secret: set CAIO_LICENSE_SECRET or pass --secret-file")
}

// sealingKey derives (once per salt and parameters) the key that seals
// secrets in this database.
func (k *keyring) sealingKey(tx keyTx) (*secretbox.Key, error) {
	secret := k.currentSecret()
	if secret == "" {
		return nil, errSecretRequired()
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
	return k.derive(kdf, secret, salt)
}

func derivedKey(kdf secretbox.KDF, salt []byte) string { return kdf.String() + "\x00" + string(salt) }

// cached is the sealing key derived for kdf and salt, if any.
func (k *keyring) cached(kdf secretbox.KDF, salt []byte) *secretbox.Key {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.derived[derivedKey(kdf, salt)]
}

// keep remembers a derived key. Two at most: the current salt's and, across
// a rotation, the other one (a request that read before the rotation
// committed still opens what it read).
func (k *keyring) keep(kdf secretbox.KDF, salt []byte, key *secretbox.Key) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.derived) >= 2 {
		k.derived = nil
	}
	if k.derived == nil {
		k.derived = map[string]*secretbox.Key{}
	}
	k.derived[derivedKey(kdf, salt)] = key
}

func (k *keyring) derive(kdf secretbox.KDF, secret string, salt []byte) (*secretbox.Key, error) {
	if key := k.cached(kdf, salt); key != nil {
		return key, nil
	}
	// One derivation at a time (each takes about 300 MB): callers that
	// wait find the key the first one derived.
	k.deriving.Lock()
	defer k.deriving.Unlock()
	if key := k.cached(kdf, salt); key != nil {
		return key, nil
	}
	key, err := secretbox.DeriveWith(kdf, secret, salt)
	if err != nil {
		return nil, err
	}
	if k.currentSecret() == secret { // not rotated away meanwhile
		k.keep(kdf, salt, key)
	}
	return key, nil
}

// provenKeys opens every signing key with the secret and returns the
// private keys, oldest first (each public key is thereby proven), and the
// sealing key that opened them.
func (k *keyring) provenKeys(tx keyTx) ([]SigningKey, []ed25519.PrivateKey, *secretbox.Key, error) {
	keys, err := tx.SigningKeys()
	if err != nil {
		return nil, nil, nil, err
	}
	return k.proveKeys(tx, keys)
}

// proveKeys is provenKeys for the signing keys already read.
func (k *keyring) proveKeys(tx keyTx, keys []SigningKey) ([]SigningKey, []ed25519.PrivateKey, *secretbox.Key, error) {
	box, err := k.sealingKey(tx)
	if err != nil {
		return nil, nil, nil, err
	}
	// The same sealed records opened by the same key were proven already:
	// opening and re-deriving each key costs more than the rest of a check.
	fp := provenFingerprint(keys)
	k.mu.Lock()
	if p := k.proven; p != nil && p.box == box && p.fp == fp {
		k.mu.Unlock()
		return keys, p.privs, box, nil
	}
	k.mu.Unlock()
	privs := make([]ed25519.PrivateKey, len(keys))
	var refused []string
	for i, sk := range keys {
		privs[i], err = openSigningKey(box, sk)
		switch {
		case ErrorCode(err) == CodeSecretMismatch:
			refused = append(refused, sk.KeyID)
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
		k.warnIfWeak(tx)
		pubs := make([]ed25519.PublicKey, len(keys))
		for i, sk := range keys {
			pubs[i] = ed25519.PublicKey(sk.PublicKey)
		}
		k.proved(pubs)
	}
	k.mu.Lock()
	k.proven = &provenSet{fp: fp, box: box, privs: privs}
	k.mu.Unlock()
	return keys, privs, box, nil
}

// proved hands freshly proven (or freshly made) public keys to whoever
// remembers them (the CLI's trusted-keys file).
func (k *keyring) proved(pubs []ed25519.PublicKey) {
	if k.onProven != nil {
		k.onProven(pubs)
	}
}

// hasProven reports whether the secret has opened the signing keys yet.
func (k *keyring) hasProven() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.proven != nil
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
func (k *keyring) warnIfWeak(tx keyTx) {
	if err := k.secretWeakness(); err != nil {
		k.warn("this database's signing key is sealed under a weak secret (" + err.Error() + "): run 'manage-licenses rotate-secret' to re-seal it under a strong one")
		return
	}
	params, _ := tx.Setting(SettingKDFParams)
	if kdf, err := secretbox.ParseKDF(string(params)); err == nil && kdf.Weak() {
		k.warn("this database's signing key is sealed with an older, cheaper key derivation (" + kdf.String() + "): run 'manage-licenses rotate-secret' to re-seal it with " + secretbox.DefaultKDF.String())
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

// secretWeakness judges the secret once (zxcvbn takes milliseconds; a
// server proves keys on every request).
func (k *keyring) secretWeakness() error {
	k.mu.Lock()
	secret, j := k.secret, k.judged
	k.mu.Unlock()
	if j != nil && j.secret == secret {
		return j.err
	}
	j = &judgement{secret: secret, err: k.policy(secret)} // outside the lock: zxcvbn takes milliseconds
	k.mu.Lock()
	if k.secret == secret {
		k.judged = j
	}
	k.mu.Unlock()
	return j.err
}

type judgement struct {
	secret string
	err    error
}

// signingKey returns the database's current signing key, creating it on
// first use (created then names it, for the caller's event). A new signing
// key is made only under a strong secret.
func (k *keyring) signingKey(tx keyTx, now time.Time) (priv ed25519.PrivateKey, box *secretbox.Key, created string, err error) {
	if !k.hasSecret() {
		return nil, nil, "", errSecretRequired()
	}
	existing, err := tx.SigningKeys()
	if err != nil {
		return nil, nil, "", err
	}
	if len(existing) > 0 {
		_, privs, box, err := k.proveKeys(tx, existing)
		if err != nil {
			return nil, nil, "", err
		}
		return privs[len(privs)-1], box, "", nil
	}
	if err := k.secretWeakness(); err != nil {
		return nil, nil, "", Errorf(CodeWeakSecret, "refusing to create the signing key: %v", err)
	}
	// Nothing is sealed yet: start with a fresh salt and today's derivation.
	if err := tx.PutSetting(SettingKDFSalt, secretbox.NewSalt()); err != nil {
		return nil, nil, "", err
	}
	if err := tx.PutSetting(SettingKDFParams, []byte(secretbox.DefaultKDF.String())); err != nil {
		return nil, nil, "", err
	}
	if box, err = k.sealingKey(tx); err != nil {
		return nil, nil, "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, "", err
	}
	kid := licensekey.KeyID(pub)
	err = tx.InsertSigningKey(SigningKey{KeyID: kid, PublicKey: pub, CreatedAt: now, SealedPrivateKey: sealSigningKey(box, kid, priv)})
	if err != nil {
		return nil, nil, "", err
	}
	// A key made here is as proven as one the secret opened: the next
	// command on this machine verifies with it without the secret.
	k.proved([]ed25519.PublicKey{pub})
	return priv, box, kid, nil
}

// verificationKeys are the keys a key's signature is checked against: the
// pinned ones when configured; else the database's, proven with the secret;
// else those the secret proved earlier on this machine; else, only where
// the caller opted in (serve), the database's unproven.
func (k *keyring) verificationKeys(tx keyTx) (licensekey.PublicKeys, error) {
	if k.pinned != nil {
		return k.pinned, nil
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
	case k.remembersAll(stored):
		// Proven on this machine before: deriving the sealing key again
		// (about a second and 300 MB) would prove nothing new.
		return k.remembered, nil
	case k.hasSecret():
		stored, _, _, err = k.proveKeys(tx, stored)
	case len(k.remembered) > 0:
		return k.remembered, nil
	case k.trustUnproven:
	default:
		return nil, Errorf(CodePublicKeyRequired, "cannot tell genuine license keys from forged ones without a trusted public key: set CAIO_LICENSE_PUBLIC_KEY to the key 'manage-licenses public-key' prints with the secret, or give the signing secret (CAIO_LICENSE_SECRET or --secret-file) once on this machine")
	}
	if err != nil {
		return nil, err
	}
	for _, sk := range stored {
		keys.Add(ed25519.PublicKey(sk.PublicKey))
	}
	return keys, nil
}

// remembersAll reports whether every one of the database's signing keys is
// one this machine remembers as proven, with the same public key.
func (k *keyring) remembersAll(stored []SigningKey) bool {
	if len(k.remembered) == 0 || len(stored) == 0 {
		return false
	}
	for _, sk := range stored {
		if !k.remembers(sk) {
			return false
		}
	}
	return true
}

// remembers reports whether this machine proved sk before.
func (k *keyring) remembers(sk SigningKey) bool {
	known, ok := k.remembered[sk.KeyID]
	return ok && known.Equal(ed25519.PublicKey(sk.PublicKey))
}

// acceptable judges a new secret before anything is sealed under it.
func (k *keyring) acceptable(newSecret string) error {
	if err := k.policy(newSecret); err != nil {
		return Errorf(CodeWeakSecret, "refusing the new secret: %v", err)
	}
	return nil
}

// reseal re-seals every sealed value (signing keys, stored license keys)
// under newSecret with a fresh salt and today's key derivation, in tx. The
// keyring keeps the old secret until use says the unit of work committed.
func (k *keyring) reseal(tx keyTx, newSecret string) (RotationResult, error) {
	if err := k.acceptable(newSecret); err != nil {
		return RotationResult{}, err
	}
	res := RotationResult{KDF: secretbox.DefaultKDF.String()}
	keys, privs, old, err := k.provenKeys(tx)
	if err != nil {
		return res, err
	}
	licenseKeys, err := tx.AllLicenseKeys()
	if err != nil {
		return res, err
	}
	plain := make([][]byte, len(licenseKeys))
	for i, lk := range licenseKeys {
		if plain[i], err = old.Open(lk.Sealed, licenseKeyAAD(lk.LicenseID)); err != nil {
			return res, errSecretMismatch()
		}
	}
	salt := secretbox.NewSalt()
	box, err := secretbox.DeriveWith(secretbox.DefaultKDF, newSecret, salt)
	if err != nil {
		return res, err
	}
	// Known from now on: a request that reads the new salt once this
	// commits opens it, even before use switches the secret. (Should the
	// rotation roll back, the salt is never seen.)
	k.keep(secretbox.DefaultKDF, salt, box)
	for i, sk := range keys {
		if err := tx.ResealSigningKey(sk.KeyID, sealSigningKey(box, sk.KeyID, privs[i])); err != nil {
			return res, err
		}
	}
	for i, lk := range licenseKeys {
		if err := tx.ResealLicenseKey(lk.Digest, box.Seal(plain[i], licenseKeyAAD(lk.LicenseID))); err != nil {
			return res, err
		}
	}
	if err := tx.PutSetting(SettingKDFSalt, salt); err != nil {
		return res, err
	}
	if err := tx.PutSetting(SettingKDFParams, []byte(res.KDF)); err != nil {
		return res, err
	}
	res.SigningKeys, res.LicenseKeys = len(keys), len(licenseKeys)
	return res, nil
}

// use makes newSecret the keyring's secret (after a committed rotation).
// The derived keys stay: each opens only what its salt sealed.
func (k *keyring) use(newSecret string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.secret, k.proven, k.judged = newSecret, nil, nil
}

// verifiedKey is a license key whose signature verified, with the public
// key that verified it.
type verifiedKey struct {
	claims licensekey.Claims
	pub    ed25519.PublicKey
}

// maxVerified bounds the memory of verified keys.
const maxVerified = 4096

// verifyCached is verify, skipping the signature check for a key that
// verified before under a public key still trusted: an instance checks in
// with the same key again and again, and the signature check was a tenth
// of an activation's time.
func (k *keyring) verifyCached(key string, keys licensekey.PublicKeys) (licensekey.Claims, error) {
	canon := licensekey.Canonical(key)
	k.verifiedMu.Lock()
	v, ok := k.verified[canon]
	k.verifiedMu.Unlock()
	if ok && bytes.Equal(keys[v.claims.KeyID], v.pub) {
		return v.claims, nil
	}
	claims, err := verify(key, keys)
	if err != nil {
		return claims, err
	}
	k.verifiedMu.Lock()
	if k.verified == nil || len(k.verified) >= maxVerified {
		k.verified = map[string]verifiedKey{}
	}
	k.verified[canon] = verifiedKey{claims, keys[claims.KeyID]}
	k.verifiedMu.Unlock()
	return claims, nil
}
