package s3log

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// PruneReport says what PruneHistory removed.
type PruneReport struct {
	DeltasRemoved    int       `json:"deltas_removed"`
	SnapshotsRemoved int       `json:"snapshots_removed"`
	OldestPoint      time.Time `json:"oldest_point_in_time,omitzero"`
}

// seqOf reads the sequence number from a delta or history key.
func seqOf(key string) (uint64, bool) {
	name := strings.TrimSuffix(key[strings.LastIndex(key, "/")+1:], ".db")
	n, err := strconv.ParseUint(name, 10, 64)
	return n, err == nil
}

type entry struct {
	seq      uint64
	key      string
	modified time.Time
}

func (l *Log[C]) listSeq(ctx context.Context, prefix string) ([]entry, error) {
	objs, err := l.obj.List(ctx, prefix)
	if err != nil {
		return nil, Unavailable(err)
	}
	var out []entry
	for _, o := range objs {
		if seq, ok := seqOf(o.Key); ok {
			out = append(out, entry{seq, o.Key, o.Modified})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// PruneHistory removes deltas and snapshots older than the history window
// that no one can need: it keeps the newest history snapshot from before
// the window (the base of its oldest point in time) and everything after
// it, and never anything past the current snapshot's sequence number.
// Age-based bucket lifecycle rules cannot make this choice (a database
// without writes for a week would lose its base), so the caller's
// maintenance does it.
func (l *Log[C]) PruneHistory(ctx context.Context) (PruneReport, error) {
	var rep PruneReport
	info, err := l.obj.Head(ctx, l.key)
	if errors.Is(err, ErrNoObject) {
		return rep, ErrNotFound
	}
	if err != nil {
		return rep, Unavailable(err)
	}
	current, _, err := snapshotMeta(info.Meta)
	if err != nil {
		return rep, &CorruptError{Problem: UnreadableMetadata, Object: l.uri, Err: err}
	}
	snaps, err := l.listSeq(ctx, l.key+".snapshots/")
	if err != nil {
		return rep, err
	}
	deltas, err := l.listSeq(ctx, l.key+".log/")
	if err != nil {
		return rep, err
	}
	cutoff := time.Now().Add(-l.history)
	base := -1
	for i, sn := range snaps {
		if sn.modified.Before(cutoff) && sn.seq <= current {
			base = i
		}
	}
	if base < 0 {
		if len(snaps) > 0 {
			rep.OldestPoint = snaps[0].modified
		}
		return rep, nil
	}
	keep := snaps[base].seq
	rep.OldestPoint = snaps[base].modified
	var remove []string
	for _, sn := range snaps[:base] {
		remove = append(remove, sn.key)
		rep.SnapshotsRemoved++
	}
	for _, d := range deltas {
		if d.seq <= keep && d.modified.Before(cutoff) {
			remove = append(remove, d.key)
			rep.DeltasRemoved++
		}
	}
	if err := l.obj.Remove(ctx, remove); err != nil {
		return PruneReport{}, Unavailable(err)
	}
	return rep, nil
}

// RebuildAt rebuilds the database as it was at time at, the newest history
// snapshot published by then and the deltas after it committed by then,
// in a private file, and runs use on it. The file is gone when it
// returns; use's errors are returned as they are.
func (l *Log[C]) RebuildAt(ctx context.Context, at time.Time, use func(path string) error) error {
	snaps, err := l.listSeq(ctx, l.key+".snapshots/")
	if err != nil {
		return err
	}
	base := -1
	for i, sn := range snaps {
		if !sn.modified.After(at) {
			base = i
		}
	}
	if base < 0 {
		e := &NoPointInTimeError{At: at}
		if len(snaps) > 0 {
			e.Oldest = snaps[0].modified
		}
		return e
	}
	tmp, err := os.MkdirTemp(l.cacheDir, ".at-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "at.db")
	seq, sum, _, err := l.fetchSnapshot(ctx, snaps[base].key, work)
	if err != nil {
		return err
	}
	for next := seq + 1; ; next++ {
		d, err := l.fetchDelta(ctx, next)
		if errors.Is(err, ErrNoObject) {
			break
		}
		if err != nil {
			return err
		}
		if d.Time.After(at) {
			break
		}
		if err := pagelog.Apply(work, sum, *d); err != nil {
			return l.badDelta(DoesNotApply, next, err)
		}
		sum = d.Post
	}
	return use(work)
}
