package secretstrength

import (
	"strings"
	"sync"
	"unicode"

	"github.com/trustelem/zxcvbn/frequency"
)

// Secrets made of words. zxcvbn prices a phrase as a product of word
// ranks, so a long enough sentence passes any threshold on guesses; but a
// guesser does not enumerate word products, it tries phrases people know
// (quotes, lyrics, sayings, the famous pangrams), and a five-line list of
// them cracked a database sealed under one. So a secret whose letters are
// mostly dictionary words is refused however long it is: a signing
// secret is for a password manager, never for a memory.

// minWord is the shortest word counted, but for common2: one- and most
// two-letter words turn up in random text too often to tell it from a
// phrase.
const minWord = 3

// common2 are the two-letter words that phrases are full of ("to be or
// not to be"); other two-letter strings are left to chance.
var common2 = map[string]bool{"to": true, "be": true, "or": true, "is": true, "it": true, "of": true, "in": true,
	"on": true, "at": true, "my": true, "me": true, "we": true, "he": true, "up": true, "so": true, "no": true,
	"do": true, "go": true, "an": true, "as": true, "by": true, "if": true, "us": true, "am": true}

// maxWordsShare is the share of a secret's characters (separators aside)
// that words may cover. Random base64 or hex stays far below it (see the
// tests: at most about a third over 100,000 secrets).
const maxWordsShare = 0.6

var (
	wordsOnce sync.Once
	words     map[string]struct{}
	longest   int
)

// dictionary is zxcvbn's English word lists (Wikipedia and film and
// television frequencies, names, surnames, and the letters-only entries of
// its common passwords), loaded on first use.
func dictionary() (map[string]struct{}, int) {
	wordsOnce.Do(func() {
		words = map[string]struct{}{}
		for _, list := range []string{"english_wikipedia", "us_tv_and_film", "female_names", "male_names", "surnames", "passwords"} {
			for _, w := range frequency.FrequencyLists[list] {
				if (len(w) >= minWord || common2[w]) && isLetters(w) {
					words[w] = struct{}{}
					longest = max(longest, len(w))
				}
			}
		}
	})
	return words, longest
}

func isLetters(s string) bool {
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// separator: what people put between the words of a phrase.
func separator(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune("-_.,;:!?'\"/+&", r)
}

// wordsShare returns the share of secret's characters, separators left
// out, that the best split into dictionary words covers. A word counts in
// lower case, upper case or capitalised, as people write them; random
// text rarely keeps one case through a word.
func wordsShare(secret string) float64 {
	dict, longest := dictionary()
	var b strings.Builder
	for _, r := range secret {
		if !separator(r) {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if s == "" {
		return 0
	}
	lower := strings.ToLower(s)
	// covered[i]: most characters of s[:i] that words can cover.
	covered := make([]int, len(s)+1)
	for i := 1; i <= len(s); i++ {
		covered[i] = covered[i-1]
		for n := 2; n <= longest && n <= i; n++ {
			if covered[i-n]+n <= covered[i] {
				continue
			}
			if _, ok := dict[lower[i-n:i]]; ok && wordCase(s[i-n:i]) {
				covered[i] = covered[i-n] + n
			}
		}
	}
	return float64(covered[len(s)]) / float64(len(s))
}

// wordCase: w is all lower case, all upper case, or capitalised.
func wordCase(w string) bool {
	rest := w[1:]
	return rest == strings.ToLower(rest) || w == strings.ToUpper(w)
}
