// Package instanceid says which instance ids a seat may be held under and
// gives each one spelling.
//
// A seat is counted per instance id, so two ids that look the same must
// be the same id, and an id must look like something: otherwise one host
// can hold several seats under names an operator cannot tell apart, or
// under a name nobody can see. The server (licensing) and the client
// (licenseclient) apply the same rules, so that the id a signed answer
// names is the one the client asked about.
package instanceid

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxLen is the longest id, in bytes of UTF-8 (after normalisation).
const MaxLen = 128

// Normalize returns the NFC form of id, with every space character (no-
// break, narrow, figure, thin, ideographic...) as U+0020: NFC and NFD
// spellings of one name, and names that differ only in the kind of space,
// are one instance.
func Normalize(id string) string {
	if !utf8.ValidString(id) {
		return id // refused by Check; never "repaired" into another id
	}
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Zs, r) {
			return ' '
		}
		return r
	}, norm.NFC.String(id))
}

// ErrRequired is returned for an empty id.
var ErrRequired = errors.New("an instance id is required")

// Check returns why a normalised id may not name an instance, or nil. The
// message names the rule broken.
func Check(id string) error {
	switch {
	case id == "":
		return ErrRequired
	case !utf8.ValidString(id):
		return errors.New("instance id must be valid UTF-8")
	case len(id) > MaxLen:
		return fmt.Errorf("instance id must be at most %d bytes of UTF-8 (got %d)", MaxLen, len(id))
	case strings.TrimSpace(id) != id:
		return errors.New("instance id must not start or end with a space")
	}
	visible := false
	prev := ' '
	for _, r := range id {
		switch {
		case invisible(r):
			return fmt.Errorf("instance id must not contain U+%04X: no control, format, zero-width, bidirectional, filler or blank characters", r)
		case unicode.Is(unicode.M, r) && (prev == ' ' || unicode.IsSpace(prev)):
			return fmt.Errorf("instance id must not contain a combining mark (U+%04X) without a letter or digit before it", r)
		case !unicode.IsSpace(r) && !unicode.Is(unicode.M, r):
			visible = true
		}
		prev = r
	}
	if !visible {
		return errors.New("instance id must contain a visible character (a letter, digit, punctuation or symbol)")
	}
	return nil
}

// invisible: what does not show, or shows as nothing, in an id. Controls
// (Cc), format characters (Cf: bidi controls, zero widths, soft hyphen),
// line and paragraph separators, private use, surrogates and unassigned
// code points; Unicode's default-ignorable code points (which include
// the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, and the variation
// selectors); and blanks that are letters or symbols by category (U+2800
// BRAILLE PATTERN BLANK).
func invisible(r rune) bool {
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
		return true
	}
	if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) {
		return true // unassigned
	}
	return r == '\u2800' || r == '\u115F' || r == '\u1160' || r == '\u3164' || r == '\uFFA0'
}
