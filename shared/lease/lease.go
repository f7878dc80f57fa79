// Package lease encodes seat leases: compact signed tokens that let a CAIO
// instance run on its seat for a while without asking the server again.
//
// An online lease is signed by the API's server key (certified by the
// license signing key, see servercert); an offline lease, for air-gapped
// sites, by the license signing key itself. Token, unpadded base64url:
//
//	1    version (1)
//	1    kind: 0 online, 1 offline
//	8    key id of the signing key (server key for online, license key for offline)
//	16   license id
//	32   SHA-256 of the license key string
//	1+n  instance id: length (1-128), then UTF-8
//	8    issued at, Unix seconds (int64, big-endian)
//	8    renew after, Unix seconds
//	8    expires at, Unix seconds
//	64   Ed25519 signature over "CAIO-lease-v1" 0x00 || all the bytes above
//
// Version 2 is written when the lease has more to say: a license in its
// grace days, or a seat above max instances. After expires at it has
//
//	8    license ends at, Unix seconds: the key's license expiry
//	8    grace ends at, Unix seconds: the end of its grace (at most
//	     MaxGrace after the license's end)
//	1    flags: bit 0, an overage seat; the other bits are 0
//
// and its signature is over "CAIO-lease-v2" 0x00 and the bytes before it.
// A lease with neither is version 1, byte for byte as before, so clients
// from before version 2 keep working on licenses that use neither.
package lease

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// Kind says who signed a lease.
type Kind byte

// Lease kinds.
const (
	Online  Kind = 0
	Offline Kind = 1
)

func (k Kind) String() string {
	if k == Offline {
		return "offline"
	}
	return "online"
}

// MarshalJSON writes the kind as a word ("online", "offline"), as the CLI
// and the docs name it.
func (k Kind) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// UnmarshalJSON reads the word, or the number earlier versions wrote.
func (k *Kind) UnmarshalJSON(b []byte) error {
	var word string
	if json.Unmarshal(b, &word) == nil {
		switch word {
		case "online":
			*k = Online
			return nil
		case "offline":
			*k = Offline
			return nil
		}
		return fmt.Errorf("unknown lease kind %q", word)
	}
	var n uint8
	if err := json.Unmarshal(b, &n); err != nil || (Kind(n) != Online && Kind(n) != Offline) {
		return fmt.Errorf("unknown lease kind %s", b)
	}
	*k = Kind(n)
	return nil
}

const (
	maxInstance = 128
	// MaxGrace is the longest grace a lease may state: a client refuses
	// one that says more (a genuine server never signs it). It is also
	// the most that a stolen server key can run an expired key for (and
	// only within its certificate): grace is the server's word, not the
	// license key's.
	MaxGrace = 90 * 24 * time.Hour
)

// signedContext is what a version's signature covers before its bytes.
var signedContext = [...]string{1: "CAIO-lease-v1\x00", 2: "CAIO-lease-v2\x00"}

var enc = base64.RawURLEncoding.Strict()

// Errors from Parse and Verify.
var (
	ErrMalformed    = errors.New("lease: malformed token")
	ErrBadSignature = errors.New("lease: signature does not verify")
)

// Lease is the right of one instance to use one license until ExpiresAt.
type Lease struct {
	Kind        Kind      `json:"kind"`
	SignerKeyID string    `json:"signer_key_id"`
	LicenseID   string    `json:"license_id"`
	KeyDigest   string    `json:"key_digest"` // hex SHA-256 of the license key
	InstanceID  string    `json:"instance_id"`
	IssuedAt    time.Time `json:"issued_at"`
	RenewAfter  time.Time `json:"renew_after"`
	ExpiresAt   time.Time `json:"expires_at"`
	// LicenseEndsAt and GraceEndsAt (version 2): the license's expiry as
	// the key states it, and the end of its grace; from LicenseEndsAt the
	// instance runs in grace. Zero in a version 1 lease.
	LicenseEndsAt time.Time `json:"license_ends_at,omitzero"`
	GraceEndsAt   time.Time `json:"grace_ends_at,omitzero"`
	// Overage (version 2): the seat is above the license's max instances,
	// within its overage allowance.
	Overage bool `json:"overage,omitempty"`
}

// Version is the format the lease is written in: 2 when it states a grace
// or an overage seat, else 1.
func (l Lease) Version() int {
	if l.Overage || l.GraceEndsAt.After(l.LicenseEndsAt) {
		return 2
	}
	return 1
}

// InGrace reports whether at is within the lease's grace: the license
// ended, its grace not yet.
func (l Lease) InGrace(at time.Time) bool {
	return l.Version() == 2 && !at.Before(l.LicenseEndsAt) && at.Before(l.GraceEndsAt)
}

const flagOverage = 1

// graceInBounds: a version 2 lease's grace ends at or after the license
// does, and at most MaxGrace after. Sign and Parse hold leases to it.
func (l Lease) graceInBounds() bool {
	return !l.GraceEndsAt.Before(l.LicenseEndsAt) && l.GraceEndsAt.Sub(l.LicenseEndsAt) <= MaxGrace
}

func (l Lease) marshal() ([]byte, error) {
	lid, err1 := hex.DecodeString(l.LicenseID)
	digest, err2 := hex.DecodeString(l.KeyDigest)
	kid, err3 := hex.DecodeString(l.SignerKeyID)
	if err1 != nil || err2 != nil || err3 != nil || len(lid) != 16 || len(digest) != 32 || len(kid) != 8 ||
		l.InstanceID == "" || len(l.InstanceID) > maxInstance || (l.Kind != Online && l.Kind != Offline) {
		return nil, ErrMalformed
	}
	v := l.Version()
	if v == 2 && (l.LicenseEndsAt.IsZero() || !l.graceInBounds()) {
		return nil, ErrMalformed
	}
	b := []byte{byte(v), byte(l.Kind)}
	b = append(b, kid...)
	b = append(b, lid...)
	b = append(b, digest...)
	b = append(b, byte(len(l.InstanceID)))
	b = append(b, l.InstanceID...)
	for _, t := range []time.Time{l.IssuedAt, l.RenewAfter, l.ExpiresAt} {
		b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	}
	if v == 2 {
		b = binary.BigEndian.AppendUint64(b, uint64(l.LicenseEndsAt.Unix()))
		b = binary.BigEndian.AppendUint64(b, uint64(l.GraceEndsAt.Unix()))
		var flags byte
		if l.Overage {
			flags |= flagOverage
		}
		b = append(b, flags)
	}
	return b, nil
}

// Sign encodes l signed by priv; l.SignerKeyID is set from priv.
func Sign(l Lease, priv ed25519.PrivateKey) (string, error) {
	l.SignerKeyID = licensekey.KeyID(priv.Public().(ed25519.PublicKey))
	b, err := l.marshal()
	if err != nil {
		return "", err
	}
	return enc.EncodeToString(append(b, ed25519.Sign(priv, append([]byte(signedContext[b[0]]), b...))...)), nil
}

// Parse decodes a token without checking its signature.
func Parse(token string) (Lease, error) {
	l, _, _, err := parse(token)
	return l, err
}

func parse(token string) (Lease, []byte, []byte, error) {
	b, err := enc.DecodeString(token)
	fixed := 2 + 8 + 16 + 32 + 1 + 24 + ed25519.SignatureSize
	if err != nil || len(b) < fixed+1 || (b[0] != 1 && b[0] != 2) || b[1] > byte(Offline) {
		return Lease{}, nil, nil, ErrMalformed
	}
	if b[0] == 2 {
		fixed += 8 + 8 + 1
	}
	n := int(b[58])
	if n == 0 || n > maxInstance || len(b) != fixed+n || !utf8.Valid(b[59:59+n]) {
		return Lease{}, nil, nil, ErrMalformed
	}
	times := b[59+n:]
	at := func(i int) time.Time { return time.Unix(int64(binary.BigEndian.Uint64(times[8*i:])), 0).UTC() }
	l := Lease{
		Kind: Kind(b[1]), SignerKeyID: hex.EncodeToString(b[2:10]), LicenseID: hex.EncodeToString(b[10:26]),
		KeyDigest: hex.EncodeToString(b[26:58]), InstanceID: string(b[59 : 59+n]),
		IssuedAt: at(0), RenewAfter: at(1), ExpiresAt: at(2),
	}
	if b[0] == 2 {
		l.LicenseEndsAt, l.GraceEndsAt, l.Overage = at(3), at(4), times[40]&flagOverage != 0
		// Only what Sign writes: a version 2 that says nothing more, or
		// unknown flags, or a grace out of bounds, is not a lease.
		if times[40]&^flagOverage != 0 || l.Version() != 2 || !l.graceInBounds() {
			return Lease{}, nil, nil, ErrMalformed
		}
	}
	body := b[:len(b)-ed25519.SignatureSize]
	return l, body, b[len(body):], nil
}

// Verify decodes a token and checks its signature with pub, whose key id
// must be the one the token names.
func Verify(token string, pub ed25519.PublicKey) (Lease, error) {
	l, body, sig, err := parse(token)
	if err != nil {
		return l, err
	}
	if licensekey.KeyID(pub) != l.SignerKeyID || !ed25519.Verify(pub, append([]byte(signedContext[body[0]]), body...), sig) {
		return l, ErrBadSignature
	}
	return l, nil
}
