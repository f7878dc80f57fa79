package lease

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

func testLease() (Lease, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return Lease{Kind: Online, LicenseID: strings.Repeat("ab", 16), KeyDigest: strings.Repeat("cd", 32), InstanceID: "node-1",
		IssuedAt: at, RenewAfter: at.Add(time.Hour), ExpiresAt: at.Add(2 * time.Hour)}, priv
}

// A lease with neither grace nor overage is version 1, exactly as before
// version 2 existed; one with either is version 2, and round-trips.
func TestVersions(t *testing.T) {
	l, priv := testLease()
	tok, err := Sign(l, priv)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := enc.DecodeString(tok); b[0] != 1 || len(b) != 2+8+16+32+1+6+24+64 {
		t.Fatalf("plain lease: version %d, %d bytes", b[0], len(b))
	}
	for _, mod := range []func(*Lease){
		func(l *Lease) {
			l.LicenseEndsAt, l.GraceEndsAt = l.IssuedAt.Add(time.Hour), l.IssuedAt.Add(49*time.Hour)
		},
		func(l *Lease) {
			l.LicenseEndsAt, l.GraceEndsAt, l.Overage = l.IssuedAt.Add(24*time.Hour), l.IssuedAt.Add(24*time.Hour), true
		},
	} {
		v2 := l
		mod(&v2)
		tok, err := Sign(v2, priv)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Verify(tok, priv.Public().(ed25519.PublicKey))
		v2.SignerKeyID = got.SignerKeyID
		if err != nil || got != v2 || got.Version() != 2 {
			t.Fatalf("round trip: %+v %v\nwant %+v", got, err, v2)
		}
	}
}

// What a hostile holder of a version 2 lease might try: flip the overage
// flag off, stretch the grace, relabel it version 1, set unknown flags.
// None of it verifies or even parses.
func TestVersion2Tampering(t *testing.T) {
	l, priv := testLease()
	l.LicenseEndsAt, l.GraceEndsAt, l.Overage = l.IssuedAt.Add(time.Hour), l.IssuedAt.Add(25*time.Hour), true
	tok, err := Sign(l, priv)
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	b, _ := enc.DecodeString(tok)
	flags := len(b) - 64 - 1
	for name, edit := range map[string]func([]byte) []byte{
		"overage flag cleared": func(b []byte) []byte { b[flags] = 0; return b },
		"unknown flag":         func(b []byte) []byte { b[flags] |= 2; return b },
		"grace stretched":      func(b []byte) []byte { b[flags-1]++; return b },
		"relabelled version 1": func(b []byte) []byte { b[0] = 1; return b },
		"trailing v2 fields cut, relabelled v1": func(b []byte) []byte {
			return append(append([]byte{1}, b[1:flags-16]...), b[len(b)-64:]...)
		},
	} {
		c := edit(append([]byte(nil), b...))
		_, err := Verify(base64.RawURLEncoding.EncodeToString(c), pub)
		if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A grace longer than MaxGrace is never signed, and one signed all the
	// same (a stolen key) does not parse.
	long := l
	long.GraceEndsAt = long.LicenseEndsAt.Add(MaxGrace + time.Second)
	if _, err := Sign(long, priv); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a grace past MaxGrace signed: %v", err)
	}
	body := append([]byte(nil), b[:len(b)-64]...)
	binary.BigEndian.PutUint64(body[flags-8:], uint64(long.GraceEndsAt.Unix()))
	forged := append(body, ed25519.Sign(priv, append([]byte(signedContext[2]), body...))...)
	if _, err := Verify(base64.RawURLEncoding.EncodeToString(forged), pub); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a signed lease with a grace past MaxGrace: %v", err)
	}
}

func TestInGrace(t *testing.T) {
	l, _ := testLease()
	if l.InGrace(l.ExpiresAt) {
		t.Fatal("a version 1 lease is never in grace")
	}
	l.LicenseEndsAt, l.GraceEndsAt = l.IssuedAt.Add(time.Hour), l.IssuedAt.Add(3*time.Hour)
	for at, want := range map[time.Duration]bool{time.Hour - time.Second: false, time.Hour: true, 3*time.Hour - time.Second: true, 3 * time.Hour: false} {
		if got := l.InGrace(l.IssuedAt.Add(at)); got != want {
			t.Errorf("at +%v: in grace %v", at, got)
		}
	}
}
