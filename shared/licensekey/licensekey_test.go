package licensekey_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

var update = flag.Bool("update", false, "rewrite testdata/key-vectors.json")

func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b + byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func guideClaims() licensekey.Claims {
	return licensekey.Claims{
		LicenseID:    "0123456789abcdef0123456789abcdef",
		CustomerID:   "CUST-001",
		Tier:         "standard",
		IssuedAt:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ExpiresAt:    time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC),
		Features:     []string{"audit", "analytics"},
		MaxInstances: 5, MaxServices: 100, MaxRequestsPerDay: 10000,
	}
}

func keysOf(priv ed25519.PrivateKey) licensekey.PublicKeys {
	k := licensekey.PublicKeys{}
	k.Add(priv.Public().(ed25519.PublicKey))
	return k
}

func TestRoundTrip(t *testing.T) {
	priv := testKey(1)
	cases := map[string]licensekey.Claims{
		"guide example": guideClaims(),
		"dashes in customer id": func() licensekey.Claims {
			c := guideClaims()
			c.CustomerID = "ACME-EU-2-"
			return c
		}(),
		"no features, max limits": func() licensekey.Claims {
			c := guideClaims()
			c.Features = nil
			c.MaxInstances, c.MaxServices, c.MaxRequestsPerDay = 1<<32-1, 1, 1<<32-1
			return c
		}(),
		"every field at its cap": maxClaims(),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			key, err := licensekey.Encode(c, priv)
			if err != nil {
				t.Fatal(err)
			}
			if len(key) > licensekey.MaxKeyLen {
				t.Fatalf("key is %d characters, over MaxKeyLen %d", len(key), licensekey.MaxKeyLen)
			}
			if strings.Trim(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
				t.Fatalf("key has characters outside A-Za-z0-9._-: %s", key)
			}
			if !strings.HasPrefix(key, "CAIO-v1-"+c.CustomerID+"-") {
				t.Fatalf("key %s does not start with CAIO-v1-%s-", key, c.CustomerID)
			}
			got, err := licensekey.Verify(key, keysOf(priv))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := licensekey.NormalizeFeatures(c.Features)
			if got.CustomerID != c.CustomerID || got.LicenseID != c.LicenseID || got.Tier != c.Tier ||
				!got.IssuedAt.Equal(c.IssuedAt) || !got.ExpiresAt.Equal(c.ExpiresAt) ||
				strings.Join(got.Features, ",") != strings.Join(want, ",") ||
				got.MaxInstances != c.MaxInstances || got.MaxServices != c.MaxServices || got.MaxRequestsPerDay != c.MaxRequestsPerDay ||
				got.KeyID != licensekey.KeyID(priv.Public().(ed25519.PublicKey)) {
				t.Fatalf("claims changed in the round trip:\n got %+v\nwant %+v", got, c)
			}
		})
	}
}

func maxClaims() licensekey.Claims {
	c := guideClaims()
	c.CustomerID = strings.Repeat("C", licensekey.MaxCustomerIDLen)
	c.Tier = strings.Repeat("t", licensekey.MaxTierLen)
	c.Features = nil
	for i := range licensekey.MaxFeatures {
		c.Features = append(c.Features, string(rune('a'+i))+strings.Repeat("f", licensekey.MaxFeatureLen-1))
	}
	return c
}

func TestMaxKeyLenIsReached(t *testing.T) {
	key, err := licensekey.Encode(maxClaims(), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != licensekey.MaxKeyLen {
		t.Fatalf("a key with every field at its cap is %d characters; MaxKeyLen says %d", len(key), licensekey.MaxKeyLen)
	}
}

func TestGuideExampleFitsIn256(t *testing.T) {
	key, err := licensekey.Encode(guideClaims(), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(key) > 256 {
		t.Fatalf("guide example key is %d characters, want <= 256", len(key))
	}
}

// Every single-character change of a key must fail verification.
func TestEverySingleCharacterChangeIsRejected(t *testing.T) {
	priv := testKey(1)
	keys := keysOf(priv)
	key, err := licensekey.Encode(guideClaims(), priv)
	if err != nil {
		t.Fatal(err)
	}
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+/= \x00"
	tried := 0
	for i := range len(key) {
		for _, r := range alphabet {
			if byte(r) == key[i] {
				continue
			}
			mutated := key[:i] + string(r) + key[i+1:]
			tried++
			if _, err := licensekey.Verify(mutated, keys); err == nil {
				t.Fatalf("changing position %d from %q to %q still verifies: %s", i, key[i], r, mutated)
			}
		}
		// Deleting or duplicating a character must fail too.
		if _, err := licensekey.Verify(key[:i]+key[i+1:], keys); err == nil {
			t.Fatalf("deleting position %d still verifies", i)
		}
		if _, err := licensekey.Verify(key[:i]+key[i:i+1]+key[i:], keys); err == nil {
			t.Fatalf("duplicating position %d still verifies", i)
		}
	}
	if tried < len(key)*60 {
		t.Fatalf("only %d mutations tried", tried)
	}
}

func TestKeyFromAnotherSigningKeyIsRejected(t *testing.T) {
	key, err := licensekey.Encode(guideClaims(), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := licensekey.Verify(key, keysOf(testKey(2)))
	if !errors.Is(err, licensekey.ErrUnknownSigningKey) {
		t.Fatalf("got %v, want ErrUnknownSigningKey", err)
	}
	// The refusal can name the key id the key claims.
	if want := licensekey.KeyID(testKey(1).Public().(ed25519.PublicKey)); claims.KeyID != want || claims.CustomerID != "" {
		t.Fatalf("claims with an unknown signing key: %+v, want only key id %s", claims, want)
	}
	// Same key id but a different public key (a forged key table): bad signature.
	forged := licensekey.PublicKeys{}
	p := keysOf(testKey(1))
	for kid := range p {
		forged[kid] = testKey(2).Public().(ed25519.PublicKey)
	}
	if _, err := licensekey.Verify(key, forged); !errors.Is(err, licensekey.ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", err)
	}
}

// encoding/base64 skips CR and LF; a key with line breaks (or any other
// character) inside is not the key.
func TestWhitespaceInsideIsRejected(t *testing.T) {
	key, err := licensekey.Encode(guideClaims(), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(licensekey.Prefix) + 10, len(key) - 30, len(key) - 1} {
		for _, ws := range []string{"\n", "\r\n", "\r", " ", "\t"} {
			bad := key[:at] + ws + key[at:]
			if _, err := licensekey.Verify(bad, keysOf(testKey(1))); !errors.Is(err, licensekey.ErrMalformed) {
				t.Errorf("%q inserted at %d: %v, want ErrMalformed", ws, at, err)
			}
		}
	}
	if got := licensekey.Canonical(" \t" + key + "\r\n"); got != key {
		t.Fatal("Canonical does not trim the whitespace around a key")
	}
}

func TestEncodeRejectsOutOfBoundsClaims(t *testing.T) {
	cases := map[string]func(*licensekey.Claims){
		"empty customer":        func(c *licensekey.Claims) { c.CustomerID = "" },
		"customer too long":     func(c *licensekey.Claims) { c.CustomerID = strings.Repeat("c", licensekey.MaxCustomerIDLen+1) },
		"customer with space":   func(c *licensekey.Claims) { c.CustomerID = "ACME CORP" },
		"customer leading dash": func(c *licensekey.Claims) { c.CustomerID = "-ACME" },
		"tier with slash":       func(c *licensekey.Claims) { c.Tier = "gold/plus" },
		"tier too long":         func(c *licensekey.Claims) { c.Tier = strings.Repeat("t", licensekey.MaxTierLen+1) },
		"too many features": func(c *licensekey.Claims) {
			c.Features = nil
			for i := range licensekey.MaxFeatures + 1 {
				c.Features = append(c.Features, string(rune('a'+i)))
			}
		},
		"empty feature":  func(c *licensekey.Claims) { c.Features = []string{""} },
		"bad license id": func(c *licensekey.Claims) { c.LicenseID = "xyz" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := guideClaims()
			mutate(&c)
			if key, err := licensekey.Encode(c, testKey(1)); err == nil {
				t.Fatalf("Encode accepted %+v: %s", c, key)
			}
		})
	}
}

func TestParsePublicKeys(t *testing.T) {
	a, b := testKey(1).Public().(ed25519.PublicKey), testKey(2).Public().(ed25519.PublicKey)
	keys, err := licensekey.ParsePublicKeys(licensekey.FormatPublicKey(a) + ", " + licensekey.FormatPublicKey(b))
	if err != nil || len(keys) != 2 {
		t.Fatalf("got %v, %v", keys, err)
	}
	for _, bad := range []string{"", "not-base64!", "AAAA", licensekey.FormatPublicKey(a)[:20]} {
		if _, err := licensekey.ParsePublicKeys(bad); err == nil {
			t.Errorf("ParsePublicKeys(%q) accepted", bad)
		}
	}
}

// vector is one entry of testdata/key-vectors.json, from which CAIO's own
// verifier can be built and checked.
type vector struct {
	Name          string            `json:"name"`
	SigningSeed   string            `json:"signing_seed_hex"`
	PublicKey     string            `json:"public_key_base64"`
	Claims        licensekey.Claims `json:"claims"`
	PayloadHex    string            `json:"payload_hex"`
	SignedMessage string            `json:"signed_message_hex"`
	Key           string            `json:"key"`
}

func TestVectors(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "key-vectors.json")
	if *update {
		writeVectors(t, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 3 {
		t.Fatalf("only %d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			seed, _ := hex.DecodeString(v.SigningSeed)
			priv := ed25519.NewKeyFromSeed(seed)
			if got := licensekey.FormatPublicKey(priv.Public().(ed25519.PublicKey)); got != v.PublicKey {
				t.Fatalf("public key %s, vector says %s", got, v.PublicKey)
			}
			key, err := licensekey.Encode(v.Claims, priv)
			if err != nil {
				t.Fatal(err)
			}
			if key != v.Key {
				t.Fatalf("Encode gave\n%s\nvector says\n%s", key, v.Key)
			}
			keys, _ := licensekey.ParsePublicKeys(v.PublicKey)
			if _, err := licensekey.Verify(v.Key, keys); err != nil {
				t.Fatal(err)
			}
			p, err := licensekey.Parse(v.Key)
			if err != nil {
				t.Fatal(err)
			}
			payload, msg := licensekey.ExportForVectors(p)
			if hex.EncodeToString(payload) != v.PayloadHex || hex.EncodeToString(msg) != v.SignedMessage {
				t.Fatalf("payload or signed message differ from the vector")
			}
		})
	}
}

func writeVectors(t *testing.T, path string) {
	withDash := guideClaims()
	withDash.CustomerID = "ACME-EU-01"
	withDash.Tier = "enterprise"
	withDash.Features = []string{"sso", "audit", "analytics", "ha"}
	bare := guideClaims()
	bare.CustomerID = "c1"
	bare.Features = nil
	bare.MaxInstances, bare.MaxServices, bare.MaxRequestsPerDay = 1, 1, 1
	var vs []vector
	for i, c := range []struct {
		name   string
		claims licensekey.Claims
	}{{"guide example", guideClaims()}, {"dashes in customer id", withDash}, {"no features", bare}} {
		priv := testKey(byte(1 + i))
		key, err := licensekey.Encode(c.claims, priv)
		if err != nil {
			t.Fatal(err)
		}
		p, err := licensekey.Parse(key)
		if err != nil {
			t.Fatal(err)
		}
		payload, msg := licensekey.ExportForVectors(p)
		vs = append(vs, vector{
			Name: c.name, SigningSeed: hex.EncodeToString(priv.Seed()),
			PublicKey: licensekey.FormatPublicKey(priv.Public().(ed25519.PublicKey)),
			Claims:    p.Claims, PayloadHex: hex.EncodeToString(payload), SignedMessage: hex.EncodeToString(msg), Key: key,
		})
	}
	out, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Ids, tiers and features are A-Z a-z 0-9 . _ - starting with a letter or
// digit, within their lengths.
func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "CUST-001": true, "9x": true, "A.b_c-d": true, "x..": true,
		"": false, "-a": false, ".a": false, "_a": false, "a b": false, "a/b": false, "é": false, "a\x00": false, "a,b": false,
	} {
		for what, err := range map[string]error{"customer id": licensekey.ValidateCustomerID(name), "tier": licensekey.ValidateTier(name)} {
			if (err == nil) != ok {
				t.Errorf("%s %q: %v", what, name, err)
			}
		}
		if _, err := licensekey.NormalizeFeatures([]string{name}); (err == nil) != ok {
			t.Errorf("feature %q: %v", name, err)
		}
	}
	if licensekey.ValidateTier(strings.Repeat("t", licensekey.MaxTierLen+1)) == nil {
		t.Error("an over-long tier was accepted")
	}
}
