package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Flag values that are checked as they are parsed: a wrong one is a
// mistake in the command line (exit 2, one line naming the flag and what
// it accepts) before anything opens the database.

// choiceValue is a string flag that takes one of a fixed list.
type choiceValue struct {
	p        *string
	accepted []string
}

func (v *choiceValue) String() string { return *v.p }
func (v *choiceValue) Type() string   { return "string" }
func (v *choiceValue) Set(s string) error {
	if !slices.Contains(v.accepted, s) {
		return fmt.Errorf("use %s", orList(v.accepted))
	}
	*v.p = s
	return nil
}

// choiceFlag defines --name taking one of accepted (and completes them).
func choiceFlag(c *cobra.Command, p *string, name, value, usage string, accepted ...string) {
	*p = value
	c.Flags().Var(&choiceValue{p: p, accepted: accepted}, name, usage)
	c.RegisterFlagCompletionFunc(name, fixed(accepted...))
}

// orList writes "a, b or c".
func orList(vals []string) string {
	if len(vals) < 2 {
		return strings.Join(vals, "")
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}

// timeValue is a time flag, read by parse (parsePast or parseFuture).
type timeValue struct {
	p     *time.Time
	raw   string
	parse func(string) (time.Time, error)
}

func (v *timeValue) String() string { return v.raw }
func (v *timeValue) Type() string   { return "time" }
func (v *timeValue) Set(s string) error {
	t, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p, v.raw = t, s
	return nil
}

// sinceFlag defines a point in the past: RFC 3339, a date, or an age.
func sinceFlag(c *cobra.Command, p *time.Time, name, usage string) {
	c.Flags().Var(&timeValue{p: p, parse: func(s string) (time.Time, error) { return parsePast(s, time.Now()) }}, name, usage)
}

// parsePast reads a time in the past the ways operators write one: RFC
// 3339, a date, or an age (7d, 12h).
func parsePast(s string, now time.Time) (time.Time, error) {
	if t, err := parseFuture(s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && strings.HasSuffix(s, "d") && n > 0 && n <= licensing.MaxDays {
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	return time.Time{}, fmt.Errorf("not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or an age (7d, 12h)")
}

// parseFuture reads a point in the future: RFC 3339 or a date (an age
// would be ambiguous there).
func parseFuture(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("not a time: use RFC 3339 (2027-06-30T00:00:00Z) or a date (2027-06-30)")
}

// fileValue is a file name; "-" is standard output (or input) where the
// flag allows it, and an empty name is refused.
type fileValue struct {
	p     *string
	stdio bool
}

func (v *fileValue) String() string { return *v.p }
func (v *fileValue) Type() string   { return "file" }
func (v *fileValue) Set(s string) error {
	if s == "" {
		if v.stdio {
			return fmt.Errorf("give a file name, or - for standard output")
		}
		return fmt.Errorf("give a file name")
	}
	if strings.HasPrefix(s, "--") {
		// --output --force: the next flag taken as the file name.
		return fmt.Errorf("looks like a flag, not a file name; give the file (./%s for a file of that name)", s)
	}
	if s == "-" && !v.stdio {
		return fmt.Errorf("- (standard output) is not accepted here: give a file name")
	}
	if info, err := os.Stat(s); (err == nil && info.IsDir()) || strings.HasSuffix(s, "/") {
		return fmt.Errorf("%s is a directory: give a file name in it", s)
	}
	*v.p = s
	return nil
}

// outputFlag defines --output/-o FILE; stdio allows "-" for standard output.
func outputFlag(c *cobra.Command, p *string, stdio bool, usage string) {
	c.Flags().VarP(&fileValue{p: p, stdio: stdio}, "output", "o", usage)
}

// nonEmptyValue is a string flag that refuses an empty value (a variable
// that expanded to nothing, in a script).
type nonEmptyValue struct{ p *string }

func (v *nonEmptyValue) String() string { return *v.p }
func (v *nonEmptyValue) Type() string   { return "string" }
func (v *nonEmptyValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("the value is empty")
	}
	*v.p = s
	return nil
}

func nonEmptyFlag(fs *pflag.FlagSet, p *string, name, usage string) {
	fs.Var(&nonEmptyValue{p: p}, name, usage)
}

// addrValue is an address to listen on, HOST:PORT; a bare port is taken
// as 127.0.0.1:PORT (local only, as the default is).
type addrValue struct{ p *string }

func (v *addrValue) String() string { return *v.p }
func (v *addrValue) Type() string   { return "host:port" }
func (v *addrValue) Set(s string) error {
	addr, err := listenAddr(s)
	if err != nil {
		return err
	}
	*v.p = addr
	return nil
}

func listenAddr(s string) (string, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 65535 {
		return net.JoinHostPort("127.0.0.1", s), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " /") {
		return "", fmt.Errorf("want HOST:PORT, such as 127.0.0.1:3000 or 0.0.0.0:8080, or a port alone")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("the port must be a number from 0 to 65535")
	}
	return s, nil
}

// customerValue is a customer id, checked by the rules ids are made by: a
// misspelt filter is a mistake, not an empty listing.
type customerValue struct{ p *string }

func (v *customerValue) String() string { return *v.p }
func (v *customerValue) Type() string   { return "id" }
func (v *customerValue) Set(s string) error {
	if err := licensekey.ValidateCustomerID(s); err != nil {
		return err
	}
	*v.p = s
	return nil
}

func customerFlag(c *cobra.Command, p *string, usage string) {
	c.Flags().Var(&customerValue{p}, "customer", usage)
}
