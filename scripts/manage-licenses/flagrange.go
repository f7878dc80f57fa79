package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/caio-licensing/caio-licensing/shared/instanceid"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// flagRanges are the accepted values of the numeric flags, by name: a
// value outside (or not a number at all) is one kind of mistake, a usage
// error that names the flag and the range.
var flagRanges = map[string][2]float64{
	"days":                    {1, licensing.MaxDays},
	"expires-days":            {1, licensing.MaxDays},
	"retention-days":          {0, licensing.MaxDays},
	"max-instances":           {1, licensing.MaxLimit},
	"max-services":            {1, licensing.MaxLimit},
	"max-requests-per-day":    {1, licensing.MaxLimit},
	"max-activations-per-day": {0, licensing.MaxLimit},
	"lease-hours":             {1, licensing.MaxDays * 24},
	"lease-minutes":           {1, licensing.MaxDays * 24 * 60},
	"seat-timeout-minutes":    {0, licensing.MaxDays * 24 * 60},
	"grace-days":              {0, licensing.MaxGraceDays},
	"overage-percent":         {0, licensing.MaxOveragePercent},
	"rate-per-address":        {0, 1e6},
	"rate-per-key":            {0, 1e6},
	"burst-per-address":       {1, 1e6},
	"burst-per-key":           {1, 1e6},
	"limit":                   {0, 1e9},
}

func rangeText(name string) string {
	r, ok := flagRanges[name]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s to %s", strconv.FormatFloat(r[0], 'f', -1, 64), strconv.FormatFloat(r[1], 'f', -1, 64))
}

// flagRules check the values of word flags by the rules the domain applies,
// so that a wrong one is reported as the command line's mistake before the
// command looks for a secret or a database.
var flagRules = map[string]func(string) error{
	"tier":        licensekey.ValidateTier,
	"instance-id": func(v string) error { return instanceid.Check(instanceid.Normalize(v)) },
}

// checkFlagRanges refuses a numeric flag given out of its range, and a
// word flag that breaks its rule.
func checkFlagRanges(c *cobra.Command, _ []string) error {
	var err error
	c.Flags().Visit(func(f *pflag.Flag) {
		if rule, ok := flagRules[f.Name]; ok && err == nil {
			if rerr := rule(f.Value.String()); rerr != nil {
				err = usageError{fmt.Errorf("--%s %q: %v", f.Name, f.Value.String(), rerr)}
			}
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok && f.Name == "features" && err == nil {
			if _, ferr := licensekey.NormalizeFeatures(sv.GetSlice()); ferr != nil {
				err = usageError{fmt.Errorf("--features: %v", ferr)}
			}
		}
		r, ok := flagRanges[f.Name]
		if !ok || err != nil {
			return
		}
		v, perr := strconv.ParseFloat(f.Value.String(), 64)
		if perr != nil || v < r[0] || v > r[1] {
			err = usageError{fmt.Errorf("--%s must be %s (got %s)", f.Name, rangeText(f.Name), f.Value.String())}
		}
	})
	return err
}

func isOwnValue(v pflag.Value) bool {
	switch v.(type) {
	case *choiceValue, *timeValue, *fileValue, *nonEmptyValue, *addrValue, *customerValue:
		return true
	}
	return false
}

// flagError turns pflag's parse errors into one line naming the flag and
// what it takes.
func flagError(c *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		name, value := invalid.GetFlag().Name, invalid.GetValue()
		if rt := rangeText(name); rt != "" {
			return usageError{fmt.Errorf("--%s must be a number from %s (got %q)", name, rt, value)}
		}
		// Our own flag values say what they accept; pflag's (a bool, a
		// list) only that the value failed to parse.
		if cause := invalid.Unwrap(); cause != nil && isOwnValue(invalid.GetFlag().Value) {
			return usageError{fmt.Errorf("--%s %q: %v", name, value, cause)}
		}
		return usageError{fmt.Errorf("--%s: %q is not a valid %s; see '%s --help'", name, value, invalid.GetFlag().Value.Type(), c.CommandPath())}
	}
	return usageError{fmt.Errorf("%v; see '%s --help'", err, c.CommandPath())}
}
