package licensekey_test

import (
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// FuzzVerify feeds arbitrary strings to the parser and verifier: they must
// never panic, and the only string that verifies is the genuine key itself
// (strict decoding: one key string per set of claims).
func FuzzVerify(f *testing.F) {
	priv := testKey(1)
	keys := keysOf(priv)
	genuine, err := licensekey.Encode(guideClaims(), priv)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{genuine, "CAIO-v1-", "CAIO-v1-CUST-001-", "CAIO-v1--AAAA", genuine[:len(genuine)-1], genuine + "A", "CAIO-v1-a-" + genuine[17:],
		genuine[:100] + "\n" + genuine[100:], genuine[:100] + "\r\n" + genuine[100:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, perr := licensekey.Parse(s)
		claims, err := licensekey.Verify(s, keys)
		if err == nil {
			if s != genuine {
				t.Fatalf("a string other than the genuine key verifies: %q", s)
			}
			if claims.CustomerID != "CUST-001" {
				t.Fatalf("wrong claims %+v", claims)
			}
		}
		if perr == nil && len(s) > licensekey.MaxKeyLen {
			t.Fatalf("parsed a key of %d characters, over MaxKeyLen", len(s))
		}
		if perr == nil && p.Claims.CustomerID == "" {
			t.Fatal("parsed a key with no customer id")
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	priv, c := testKey(1), guideClaims()
	for b.Loop() {
		if _, err := licensekey.Encode(c, priv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	priv := testKey(1)
	keys := keysOf(priv)
	key, _ := licensekey.Encode(guideClaims(), priv)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := licensekey.Verify(key, keys); err != nil {
			b.Fatal(err)
		}
	}
}
