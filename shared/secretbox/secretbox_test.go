package secretbox_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/secretbox"
)

func TestSealOpen(t *testing.T) {
	salt := secretbox.NewSalt()
	k, err := secretbox.Derive("the secret", salt)
	if err != nil {
		t.Fatal(err)
	}
	sealed := k.Seal([]byte("private seed"), []byte("row-1"))
	if bytes.Contains(sealed, []byte("private seed")) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got, err := k.Open(sealed, []byte("row-1")); err != nil || string(got) != "private seed" {
		t.Fatalf("Open: %q, %v", got, err)
	}
	again, _ := secretbox.Derive("the secret", salt)
	if _, err := again.Open(sealed, []byte("row-1")); err != nil {
		t.Fatal("the same secret and salt must derive the same key")
	}
	wrong, _ := secretbox.Derive("the secreT", salt)
	otherSalt, _ := secretbox.Derive("the secret", secretbox.NewSalt())
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		key    *secretbox.Key
		sealed []byte
		aad    string
	}{
		"wrong secret":         {wrong, sealed, "row-1"},
		"other salt":           {otherSalt, sealed, "row-1"},
		"moved to another row": {k, sealed, "row-2"},
		"tampered":             {k, flipped, "row-1"},
		"truncated":            {k, sealed[:10], "row-1"},
	}
	for name, c := range cases {
		if _, err := c.key.Open(c.sealed, []byte(c.aad)); !errors.Is(err, secretbox.ErrOpen) {
			t.Errorf("%s: got %v, want ErrOpen", name, err)
		}
	}
}

func TestDeriveRejectsEmptySecretAndShortSalt(t *testing.T) {
	if _, err := secretbox.Derive("", secretbox.NewSalt()); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := secretbox.Derive("s", []byte("short")); err == nil {
		t.Error("short salt accepted")
	}
}

func TestKDFParameters(t *testing.T) {
	if secretbox.DefaultKDF.Alg != "argon2id" || secretbox.DefaultKDF.Memory < 64*1024 {
		t.Fatalf("default KDF %v: want Argon2id with at least 64 MiB", secretbox.DefaultKDF)
	}
	for _, k := range []secretbox.KDF{secretbox.DefaultKDF, secretbox.LegacyKDF} {
		got, err := secretbox.ParseKDF(k.String())
		if err != nil || got != k {
			t.Errorf("round trip of %v: %v, %v", k, got, err)
		}
	}
	if k, err := secretbox.ParseKDF(""); err != nil || k != secretbox.LegacyKDF {
		t.Errorf("no stored parameters: %v %v, want the legacy scrypt", k, err)
	}
	// Parameters come from the database file, which is not trusted: a
	// lowered cost (a leaked file made cheap to attack) is refused.
	for _, bad := range []string{"argon2id:m=1024,t=1,p=1", "argon2id:m=65536,t=0,p=1", "scrypt:N=2,r=1,p=1",
		"argon2id:m=65536", "md5:x=1", "argon2id:m=65536,t=3,p=2,x=1", "argon2id:m=-1,t=3,p=2"} {
		if _, err := secretbox.ParseKDF(bad); err == nil {
			t.Errorf("ParseKDF(%q) accepted", bad)
		}
	}
	if !secretbox.LegacyKDF.Weak() || secretbox.DefaultKDF.Weak() {
		t.Error("Weak: legacy scrypt must be weaker than the default")
	}
	// The derivation depends on the parameters.
	salt := secretbox.NewSalt()
	a, _ := secretbox.DeriveWith(secretbox.DefaultKDF, "s", salt)
	b, _ := secretbox.DeriveWith(secretbox.LegacyKDF, "s", salt)
	if _, err := b.Open(a.Seal([]byte("x"), nil), nil); err == nil {
		t.Error("keys derived with different parameters agree")
	}
}

// BenchmarkDerive measures one derivation of the sealing key: what each
// command that needs the secret pays once, and a guesser pays per guess.
func BenchmarkDerive(b *testing.B) {
	salt := secretbox.NewSalt()
	for _, k := range []secretbox.KDF{secretbox.DefaultKDF, secretbox.LegacyKDF} {
		b.Run(k.Alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := secretbox.DeriveWith(k, "bench-secret", salt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
