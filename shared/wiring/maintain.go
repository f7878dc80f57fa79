package wiring

import (
	"context"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
)

// MaintainReport is what maintenance did, with the database's size.
type MaintainReport struct {
	licensing.MaintainReport
	SizeBefore int64                `json:"size_before"`
	SizeAfter  int64                `json:"size_after"`
	Vacuumed   bool                 `json:"vacuumed"`
	History    *s3store.PruneReport `json:"s3_history,omitempty"`
}

// HistoryPruner is a store that keeps history of its own beside the
// database (the S3 store's deltas and snapshots) and can drop what is past
// its window.
type HistoryPruner interface {
	PruneHistory(ctx context.Context) (s3store.PruneReport, error)
}

// PointInTime is a store that can rebuild the database as it was at a
// past time (the S3 store, from its deltas and snapshots).
type PointInTime interface {
	BackupAt(ctx context.Context, at time.Time, dest string) error
}

// Repairer is a store whose log can be moved past damage (the S3 store).
type Repairer interface {
	Repair(ctx context.Context) (s3store.RepairReport, error)
}

// The S3 store offers these: a rename there must not silently stop
// pruning, backup --at or repair.
var (
	_ HistoryPruner = (*s3store.Store)(nil)
	_ PointInTime   = (*s3store.Store)(nil)
	_ Repairer      = (*s3store.Store)(nil)
)

// Compaction threshold: free pages of at least 1 MiB and a fifth of the file.
const vacuumMinFree = 1 << 20

// Maintain archives history older than retention, prunes old activations,
// compacts the file when enough of it is free, and prunes the store's own
// history where it keeps one: the CLI's maintain and the reminders
// function's daily run.
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
	if p, ok := store.(HistoryPruner); ok {
		pruned, err := p.PruneHistory(ctx)
		if err != nil {
			return rep, err
		}
		rep.History = &pruned
	}
	return rep, nil
}
