package licensing

import (
	"net/mail"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caio-licensing/caio-licensing/shared/instanceid"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// Input limits, documented in docs/operator-guide.md (Input rules).
const (
	MaxNameLen       = 200
	MaxEmailLen      = 254
	MaxInstanceIDLen = instanceid.MaxLen
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

// ValidateInstanceID accepts what instanceid.Check does: an id of 1-128
// bytes with a visible character and nothing invisible (see that package).
// Ids are normalised (instanceid.Normalize) before they are checked.
func ValidateInstanceID(id string) error {
	if id == "" {
		return Errorf(CodeInstanceIDRequired, "an instance id is required (X-CAIO-Instance-ID header or instance_id)")
	}
	if err := instanceid.Check(id); err != nil {
		return badRequest("%v", err)
	}
	return nil
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
