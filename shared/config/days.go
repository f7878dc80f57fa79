package config

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// DefaultReminderDays are the reminder thresholds when CAIO_REMINDER_DAYS is unset.
var DefaultReminderDays = []int{30, 7, 1}

// ReminderDays parses CAIO_REMINDER_DAYS ("30,7,1").
func (e Env) ReminderDays() ([]int, error) {
	v := e(EnvReminderDays)
	if v == "" {
		return DefaultReminderDays, nil
	}
	var days []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > licensing.MaxDays {
			return nil, licensing.Errorf(licensing.CodeConfig, "%s=%q: want whole days separated by commas, such as 30,7,1", EnvReminderDays, v)
		}
		days = append(days, n)
	}
	return days, nil
}

// RetentionDays is the flag's value when set, else CAIO_EVENT_RETENTION_DAYS,
// else licensing.DefaultRetentionDays (0); 0 means archive everything up to
// now.
func (e Env) RetentionDays(flag int, set bool) (time.Duration, error) {
	days := licensing.DefaultRetentionDays
	switch {
	case set:
		days = flag
	case e(EnvRetentionDays) != "":
		n, err := strconv.Atoi(e(EnvRetentionDays))
		if err != nil {
			return 0, licensing.Errorf(licensing.CodeConfig, "%s=%q: want a whole number of days (0 archives everything)", EnvRetentionDays, e(EnvRetentionDays))
		}
		days = n
	}
	if days < 0 || days > licensing.MaxDays {
		return 0, licensing.Errorf(licensing.CodeBadRequest, "retention must be 0 to %d days (got %d)", licensing.MaxDays, days)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// HistoryDays reads CAIO_S3_HISTORY_DAYS: how long an S3 database keeps
// deltas and snapshots for backup --at (at least 2 days: a working copy is
// trusted a day less than this). 0 when unset: the store's default (7).
func (e Env) HistoryDays() (time.Duration, error) {
	v := e(EnvHistoryDays)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 || n > licensing.MaxDays {
		return 0, licensing.Errorf(licensing.CodeConfig, "%s=%q: want a whole number of days from 2 to %d (default 7)", EnvHistoryDays, v, licensing.MaxDays)
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// LogLevel is CAIO_LOG_LEVEL (debug, info, warn, error), info by default.
func (e Env) LogLevel() slog.Level {
	level := slog.LevelInfo
	if v := e(EnvLogLevel); v != "" {
		level.UnmarshalText([]byte(v))
	}
	return level
}
