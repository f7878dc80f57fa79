// Package secretstrength judges and makes signing secrets.
//
// The signing secret is the only thing between a leaked database file and
// the signing key, and an offline guesser can try it as often as the key
// derivation allows. So a secret must be long and not guessable; the
// guessability estimate is zxcvbn's (patterns, dictionaries, keyboard
// walks, repeats, dates), not a home-made rule.
package secretstrength

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"

	"github.com/trustelem/zxcvbn"
)

// MinLength is the shortest secret accepted, in bytes (licensing.MinSecretLen).
const MinLength = 32

// MinGuessesLog10 is the least estimated number of guesses (as a power of
// ten) a secret must need: 10^20 guesses at one Argon2id derivation each
// is out of reach of any guesser.
const MinGuessesLog10 = 20

// Advice is the one line that says how to make a good secret.
const Advice = "make one with 'manage-licenses new-secret' (or: openssl rand -base64 32)"

// Check returns why secret is too weak to protect a signing key, or nil.
func Check(secret string) error {
	if len(secret) < MinLength {
		return fmt.Errorf("the signing secret is %d characters long; it must be at least %d characters of random text: %s", len(secret), MinLength, Advice)
	}
	// zxcvbn's matchers grow with the input; judging the first 256 bytes of
	// a longer secret is enough (more cannot make it weaker).
	sample := secret
	if len(sample) > 256 {
		sample = sample[:256]
	}
	if wordsShare(sample) > maxWordsShare {
		return fmt.Errorf("the signing secret is made of words (a phrase, quote, lyric or repeated words is among the first things a guesser tries, however long): %s", Advice)
	}
	r := zxcvbn.PasswordStrength(sample, []string{"caio", "license", "licensing", "secret"})
	if r.Guesses <= 0 || math.Log10(r.Guesses) < MinGuessesLog10 {
		return fmt.Errorf("the signing secret is guessable (patterns, repeats or words a guesser tries first): %s", Advice)
	}
	return nil
}

// New returns a fresh 256-bit random secret in standard base64.
func New() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}
