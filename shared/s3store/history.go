package s3store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
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

func (s *Store) listSeq(ctx context.Context, prefix string) ([]entry, error) {
	objs, err := s.obj.list(ctx, prefix)
	if err != nil {
		return nil, s.unavailable(err)
	}
	var out []entry
	for _, o := range objs {
		if seq, ok := seqOf(o.key); ok {
			out = append(out, entry{seq, o.key, o.modified})
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
// without writes for a week would lose its base), so maintain does it.
func (s *Store) PruneHistory(ctx context.Context) (PruneReport, error) {
	var rep PruneReport
	info, err := s.obj.head(ctx, s.key)
	if errors.Is(err, errNoObject) {
		return rep, licensing.Errorf(licensing.CodeDBNotFound, "database %s not found: run 'manage-licenses init-db' to create it", s.uri)
	}
	if err != nil {
		return rep, s.unavailable(err)
	}
	current, _, err := snapshotMeta(info.meta)
	if err != nil {
		return rep, licensing.Wrap(licensing.CodeDBInvalid, err, "snapshot %s has unreadable metadata", s.uri)
	}
	snaps, err := s.listSeq(ctx, s.key+".snapshots/")
	if err != nil {
		return rep, err
	}
	deltas, err := s.listSeq(ctx, s.key+".log/")
	if err != nil {
		return rep, err
	}
	cutoff := time.Now().Add(-s.history)
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
	if err := s.obj.remove(ctx, remove); err != nil {
		return PruneReport{}, s.unavailable(err)
	}
	return rep, nil
}

// BackupAt writes the database as it was at time at to dest: the newest
// history snapshot published by then, and the deltas after it committed
// by then.
func (s *Store) BackupAt(ctx context.Context, at time.Time, dest string) error {
	snaps, err := s.listSeq(ctx, s.key+".snapshots/")
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
		oldest := "none is kept yet"
		if len(snaps) > 0 {
			oldest = "the oldest is " + snaps[0].modified.UTC().Format(time.RFC3339)
		}
		return licensing.Errorf(licensing.CodeBadRequest, "no snapshot of %s from %s or before (%s; history is kept %d days, CAIO_S3_HISTORY_DAYS)",
			s.uri, at.UTC().Format(time.RFC3339), oldest, int(s.history.Hours()/24))
	}
	tmp, err := os.MkdirTemp(s.cacheDir, ".at-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "at.db")
	seq, sum, _, err := s.fetchSnapshot(ctx, snaps[base].key, work)
	if err != nil {
		return err
	}
	for next := seq + 1; ; next++ {
		d, err := s.fetchDelta(ctx, next)
		if errors.Is(err, errNoObject) {
			break
		}
		if err != nil {
			return err
		}
		if d.Time.After(at) {
			break
		}
		if err := pagelog.Apply(work, sum, *d); err != nil {
			return licensing.Wrap(licensing.CodeDBInvalid, err, "delta %d of %s does not apply (%v): it is damaged or foreign", next, s.uri, err)
		}
		sum = d.Post
	}
	st, err := sqlitestore.OpenWorkingCopy(ctx, work, false)
	if err != nil {
		return s.explainOpen(err)
	}
	defer st.Close()
	return st.Backup(ctx, dest)
}

// Restore publishes the database file src as the next state, through the
// commit protocol: SQLite's backup API writes it into the working copy (its
// pages land in the WAL like any write's) with this operation's id, and the
// pages go out as the next delta.
func (s *Store) Restore(ctx context.Context, src string) error {
	return s.update(ctx, true, func(st *sqlitestore.WorkingCopy, opID string) (bool, error) {
		if err := st.Restore(ctx, src); err != nil {
			return false, err
		}
		return true, st.RecordOperation(ctx, opID, time.Now().UTC())
	})
}
