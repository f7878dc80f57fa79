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
