package licensing

import (
	"net/mail"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// Input limits, documented in docs/operator-guide.md (Input rules).
const (
	MaxNameLen       = 200
	MaxEmailLen      = 254
	MaxInstanceIDLen = 128
	MaxDays          = 36500
	// MaxLimit caps max instances, services and requests per day (they are
	// uint32 in keys; this leaves room and catches typos).
	MaxLimit = 1_000_000_000
)

func badRequest(format string, args ...any) error {
	return Errorf(CodeBadRequest, format, args...)
}

func validateCustomerID(id string) error {
	if err := licensekey.ValidateCustomerID(id); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func validateName(name string) error {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return badRequest("customer name must be 1-%d printable characters", MaxNameLen)
	}
	return nil
}

// ValidateEmail accepts a bare address (no display name, no CR/LF).
func ValidateEmail(email string) error {
	if email == "" || len(email) > MaxEmailLen || strings.ContainsFunc(email, unicode.IsControl) {
		return badRequest("email %q is not a valid address (want name@example.com)", email)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return badRequest("email %q is not a valid address (want name@example.com)", email)
	}
	return nil
}

// ValidateInstanceID accepts 1-128 bytes of valid UTF-8, printable, without
// spaces at the ends. Printable means what a person sees is what is stored:
// no control or format characters (bidirectional overrides, zero-width
// joiners and spaces), no line or paragraph separators.
func ValidateInstanceID(id string) error {
	if id == "" {
		return Errorf(CodeInstanceIDRequired, "an instance id is required (X-CAIO-Instance-ID header or instance_id)")
	}
	if len(id) > MaxInstanceIDLen || !utf8.ValidString(id) || strings.ContainsFunc(id, notPrintable) || strings.TrimSpace(id) != id {
		return badRequest("instance id must be 1-%d bytes of printable UTF-8 without leading or trailing spaces (no control, format, zero-width or bidirectional characters)", MaxInstanceIDLen)
	}
	return nil
}

// notPrintable: controls (Cc), format characters (Cf: bidi controls, zero
// widths, soft hyphen), line and paragraph separators (Zl, Zp), and
// unassigned or private-use code points.
func notPrintable(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) ||
		!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs)
}

func validateIP(ip string) error {
	if ip == "" {
		return nil
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return badRequest("ip address %q is not an IPv4 or IPv6 address", ip)
	}
	return nil
}

func validateDays(what string, days int) error {
	if days <= 0 || days > MaxDays {
		return badRequest("%s must be between 1 and %d days (got %d)", what, MaxDays, days)
	}
	return nil
}

func validateLimit(what string, n int64) error {
	if n <= 0 || n > MaxLimit {
		return badRequest("%s must be between 1 and %d (got %d)", what, MaxLimit, n)
	}
	return nil
}
