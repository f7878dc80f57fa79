package licensing

import (
	"crypto/ed25519"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

// The keyring, as its tests (keyring_test.go) drive it.
type Keyring = keyring

func NewKeyring(cfg Config, warn func(string)) *Keyring { return newKeyring(cfg, warn) }

func (k *keyring) VerificationKeys(tx Tx) (licensekey.PublicKeys, error) {
	return k.verificationKeys(tx)
}
func (k *keyring) SealingKey(tx Tx) (*secretbox.Key, error) { return k.sealingKey(tx) }
func (k *keyring) SigningKey(tx Tx, now time.Time) (ed25519.PrivateKey, string, error) {
	priv, _, created, err := k.signingKey(tx, now)
	return priv, created, err
}
func (k *keyring) Reseal(tx Tx, secret string) (RotationResult, error) { return k.reseal(tx, secret) }
func (k *keyring) Use(secret string)                                   { k.use(secret) }
func (k *keyring) VerifyCached(key string, keys licensekey.PublicKeys) (licensekey.Claims, error) {
	return k.verifyCached(key, keys)
}
