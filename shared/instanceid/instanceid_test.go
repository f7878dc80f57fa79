package instanceid

import (
	"strings"
	"testing"
)

func TestNormalizeAndCheck(t *testing.T) {
	same := map[string]string{
		"cafe\u0301":       "caf\u00e9", // NFD and NFC
		"A\u030a-1":        "\u00c5-1",  // Å spelled with a ring
		"node\u00a0one":    "node one",  // no-break space
		"node\u202fone":    "node one",  // narrow no-break space
		"node\u3000one":    "node one",  // ideographic space
		"rack\u20077":      "rack 7",    // figure space
		"plain-id_1.local": "plain-id_1.local",
	}
	for in, want := range same {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
		if err := Check(Normalize(in)); err != nil {
			t.Errorf("Check(%q): %v", in, err)
		}
	}
	refused := map[string]string{
		"":                            "required",
		"\u3164":                      "U+3164",
		"\uffa0x":                     "U+FFA0",
		"x\u115f":                     "U+115F",
		"\u2800":                      "U+2800",
		"\u0301":                      "combining mark",
		"a \u0301b":                   "combining mark",
		"node\u200b1":                 "U+200B",
		"node\u00ad1":                 "U+00AD",
		"node\ufe0f":                  "U+FE0F",
		"host\u202egpj.exe":           "U+202E",
		"\U000e0041x":                 "U+E0041",
		" lead":                       "start or end",
		strings.Repeat("x", MaxLen+1): "at most",
	}
	for in, want := range refused {
		err := Check(Normalize(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want an error naming %q", in, err, want)
		}
	}
}
