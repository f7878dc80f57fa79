package licensing

import (
	"bytes"
	"crypto/ed25519"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

// How secrets are sealed in the database: the settings that hold the
// derivation's salt and parameters, and the associated data that binds
// each sealed value to what it is.

// Settings of the secret-derived sealing key: a per-database random salt and
// the key-derivation parameters (absent: secretbox.LegacyKDF).
const (
	SettingKDFSalt   = "kdf_salt"
	SettingKDFParams = "kdf_params"
)

func errSecretMismatch() error {
	return Errorf(CodeSecretMismatch, "the signing secret given does not match the secret this database was set up with: use the original secret")
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
