package secretstrength_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
)

func TestCheck(t *testing.T) {
	weak := map[string]string{
		"one character":               "a",
		"16 repeated letters":         strings.Repeat("a", 16),
		"32 repeated letters":         strings.Repeat("a", 32),
		"a word repeated":             strings.Repeat("password", 4),
		"keyboard walk":               "qwertyuiopasdfghjklzxcvbnm123456",
		"counting":                    "12345678901234567890123456789012",
		"short random":                "kX9#pL2$vQ8@",
		"dictionary words and a year": "licensesecretforcaio2026password",
		"the product name, repeated":  strings.Repeat("caio-license-", 3),
		"alphabet":                    "abcdefghijklmnopqrstuvwxyzabcdef",
		// Phrases, however long: a guesser tries the famous ones first.
		"the pangram":              "thequickbrownfoxjumpsoverthelazydog",
		"xkcd, twice over":         "correcthorsebatterystaplecorrecthorse",
		"a quote":                  "To be, or not to be, that is the question",
		"a lyric":                  "Never gonna give you up, never gonna let you down",
		"a long passphrase":        "vinegar tundra pocket mosaic fiddle quartz lantern orbit",
		"a phrase, capitalised":    "ItWasTheBestOfTimesItWasTheWorstOfTimes",
		"a phrase with a suffix":   "imagine all the people living life in peace 42!",
		"a word repeated, spelled": "Password-Password-Password-Password",
	}
	for name, secret := range weak {
		if err := secretstrength.Check(secret); err == nil {
			t.Errorf("%s (%q): accepted, want refused", name, secret)
		} else if !strings.Contains(err.Error(), "new-secret") {
			t.Errorf("%s: the error does not say how to make a good secret: %v", name, err)
		}
	}
	strong := map[string]string{
		"openssl rand -base64 32": "2o7yLsqS8vX0Zq1gqv3QAbUBoVJ1pDNUeOb0A8C8kzw=",
		"hex, 32 bytes":           "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	for name, secret := range strong {
		if err := secretstrength.Check(secret); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

func TestNewIsStrongAndFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s := secretstrength.New()
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Fatalf("New() = %q: want 32 random bytes in base64", s)
		}
		if err := secretstrength.Check(s); err != nil {
			t.Fatalf("New() made a secret Check refuses: %v", err)
		}
		if seen[s] {
			t.Fatal("New() repeated a secret")
		}
		seen[s] = true
	}
}

// Random secrets are never taken for phrases: over 20,000 of them, words
// (by chance) cover well under the share that refuses (at most about 0.36
// was seen over 200,000).
func TestRandomSecretsAreNotPhrases(t *testing.T) {
	worst := 0.0
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := range 20000 {
		worst = max(worst, secretstrength.WordsShare(secretstrength.New()))
		// As the template's GenerateSecretString makes them: 48
		// characters, no punctuation.
		b := make([]byte, 48)
		rand.Read(b)
		for j := range b {
			b[j] = alnum[int(b[j])%len(alnum)]
		}
		if i%100 == 0 { // zxcvbn takes milliseconds a secret
			if err := secretstrength.Check(string(b)); err != nil {
				t.Fatalf("a secret as the template makes them is refused: %v", err)
			}
		}
		worst = max(worst, secretstrength.WordsShare(string(b)))
	}
	if worst > 0.45 {
		t.Fatalf("words cover %.2f of a random secret: the phrase rule would refuse good secrets", worst)
	}
}

func BenchmarkCheck(b *testing.B) {
	s := secretstrength.New()
	for b.Loop() {
		secretstrength.Check(s)
	}
}
