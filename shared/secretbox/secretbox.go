// Package secretbox seals small secrets (signing keys, license keys) under a
// key derived from the operator's secret, so that a copy of the database
// alone reveals none of them.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// SaltSize is the size of the random per-database salt for key derivation.
const SaltSize = 16

// ErrOpen means a sealed value could not be opened: wrong secret or tampered data.
var ErrOpen = errors.New("secretbox: cannot open sealed value (wrong secret or corrupted data)")

// Key is an AES-256-GCM key derived from a secret.
type Key struct {
	aead cipher.AEAD
}

// Derive derives a Key from secret and salt with DefaultKDF.
func Derive(secret string, salt []byte) (*Key, error) {
	return DeriveWith(DefaultKDF, secret, salt)
}

// DeriveWith derives a Key from secret and salt with kdf.
func DeriveWith(kdf KDF, secret string, salt []byte) (*Key, error) {
	if secret == "" {
		return nil, errors.New("secretbox: empty secret")
	}
	if len(salt) < SaltSize {
		return nil, fmt.Errorf("secretbox: salt must be at least %d bytes", SaltSize)
	}
	raw, err := kdf.derive([]byte(secret), salt)
	if err != nil {
		return nil, fmt.Errorf("secretbox: derive key: %w", err)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

// NewSalt returns a fresh random salt.
func NewSalt() []byte {
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return salt
}

// Seal encrypts plaintext; aad binds the result to its context (for example
// a license id) so that sealed values cannot be swapped between rows.
func (k *Key) Seal(plaintext, aad []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts a value produced by Seal with the same aad.
func (k *Key) Open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
