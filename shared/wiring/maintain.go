package config

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
)

// EnvRetentionDays is how many days of history stay in the database.
const EnvRetentionDays = "CAIO_EVENT_RETENTION_DAYS"

// RetentionDays is the flag's value when set, else CAIO_EVENT_RETENTION_DAYS,
// else 90; 0 means archive everything up to now.
func RetentionDays(flag int, set bool) (time.Duration, error) {
	days := licensing.DefaultRetentionDays
	switch {
	case set:
		days = flag
	case os.Getenv(EnvRetentionDays) != "":
		n, err := strconv.Atoi(os.Getenv(EnvRetentionDays))
		if err != nil {
			return 0, licensing.Errorf(licensing.CodeConfig, "%s=%q: want a whole number of days (0 archives everything)", EnvRetentionDays, os.Getenv(EnvRetentionDays))
		}
		days = n
	}
	if days < 0 || days > licensing.MaxDays {
		return 0, licensing.Errorf(licensing.CodeBadRequest, "retention must be 0 to %d days (got %d)", licensing.MaxDays, days)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// EnvHistoryDays is how many days of deltas and snapshots an S3 database
// keeps for backup --at.
const EnvHistoryDays = "CAIO_S3_HISTORY_DAYS"

// HistoryDays reads CAIO_S3_HISTORY_DAYS (default 7, at least 2: a working
// copy is trusted a day less than this).
func HistoryDays() (time.Duration, error) {
	v := os.Getenv(EnvHistoryDays)
	if v == "" {
		return s3store.DefaultHistory, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 || n > licensing.MaxDays {
		return 0, licensing.Errorf(licensing.CodeConfig, "%s=%q: want a whole number of days from 2 to %d (default 7)", EnvHistoryDays, v, licensing.MaxDays)
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// MaintainReport is what maintenance did, with the database's size.
type MaintainReport struct {
	licensing.MaintainReport
	SizeBefore int64                `json:"size_before"`
	SizeAfter  int64                `json:"size_after"`
	Vacuumed   bool                 `json:"vacuumed"`
	History    *s3store.PruneReport `json:"s3_history,omitempty"`
}

// Compaction threshold: free pages of at least 1 MiB and a fifth of the file.
const vacuumMinFree = 1 << 20

// Maintain archives history older than retention, prunes old activations
// and compacts the file when enough of it is free: the CLI's maintain and
// the reminders function's daily run.
func Maintain(ctx context.Context, svc *licensing.Service, store Store, retention time.Duration) (MaintainReport, error) {
	rep, err := maintain(ctx, svc, store, retention)
	if err == nil {
		metrics.OrNop(svc.Metrics()).Gauge(metrics.DatabaseBytes, float64(rep.SizeAfter))
	}
	return rep, err
}

func maintain(ctx context.Context, svc *licensing.Service, store Store, retention time.Duration) (MaintainReport, error) {
	var rep MaintainReport
	var err error
	if rep.SizeBefore, err = store.Size(ctx); err != nil {
		return rep, err
	}
	if rep.MaintainReport, err = svc.Maintain(ctx, store.Archive(), retention); err != nil {
		return rep, err
	}
	free, err := store.FreeBytes(ctx)
	if err != nil {
		return rep, err
	}
	if free >= vacuumMinFree && free*5 >= rep.SizeBefore {
		if err := store.Vacuum(ctx); err != nil {
			return rep, err
		}
		rep.Vacuumed = true
	}
	if rep.SizeAfter, err = store.Size(ctx); err != nil {
		return rep, err
	}
	if s3, ok := store.(*s3store.Store); ok {
		pruned, err := s3.PruneHistory(ctx)
		if err != nil {
			return rep, err
		}
		rep.History = &pruned
	}
	return rep, nil
}
