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

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
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
	body, info, _, err := s.obj.get(ctx, snaps[base].key, "")
	if err != nil {
		return s.unavailable(err)
	}
	err = atomicfile.WriteFrom(work, body, 0o600)
	body.Close()
	if err != nil {
		return s.unavailable(err)
	}
	if err := pagelog.Normalize(work); err != nil {
		return licensing.Wrap(licensing.CodeDBInvalid, err, "snapshot %s is not a database", snaps[base].key)
	}
	sum, err := pagelog.Checksum(work)
	if err != nil {
		return licensing.Wrap(licensing.CodeDBInvalid, err, "snapshot %s is not a whole database", snaps[base].key)
	}
	seq, recorded, err := snapshotMeta(info.meta)
	if err != nil || (recorded != nil && *recorded != sum) {
		return licensing.Errorf(licensing.CodeDBInvalid, "snapshot s3://%s/%s does not match its recorded checksum: it was changed outside manage-licenses", s.obj.bucketName(), snaps[base].key)
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
	st, err := sqlitestore.Open(ctx, work, sqlitestore.Options{PageLog: true, SkipSchemaCheck: true})
	if err != nil {
		return s.explainOpen(err)
	}
	defer st.Close()
	return st.Backup(ctx, dest)
}

// Restore publishes the database file src as the next state, through the
// commit protocol: one delta holding every page of it (with this
// operation's id recorded), put-if-absent on the next number.
func (s *Store) Restore(ctx context.Context, src string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp, err := os.MkdirTemp(s.cacheDir, ".restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "restore.db")
	in, err := os.Open(src)
	if err != nil {
		return licensing.Wrap(licensing.CodeBadRequest, err, "cannot read %s: %v", src, err)
	}
	err = atomicfile.WriteFrom(work, in, 0o600)
	in.Close()
	if err != nil {
		return err
	}
	// Only a CAIO license database of a schema this build knows, checked
	// like any database it opens.
	check, err := sqlitestore.Open(ctx, work, sqlitestore.Options{Snapshot: true})
	if err != nil {
		return licensing.Wrap(licensing.ErrorCode(err), err, "%s cannot be restored: %s", src, strings.ReplaceAll(licensing.ErrorMessage(err), work, src))
	}
	check.Close()
	opID := randomID()
	for attempt := 1; attempt <= s.maxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, attempt); err != nil {
				return err
			}
		}
		if err := s.sync(ctx); err != nil {
			if licensing.ErrorCode(err) == licensing.CodeBusy {
				continue
			}
			return err
		}
		if attempt > 1 {
			if landed, err := s.db.HasOperation(ctx, opID); err != nil || landed {
				return err
			}
		}
		d, err := s.restoreDelta(ctx, work, opID)
		if err != nil {
			return err
		}
		err = s.publish(ctx, &d)
		switch {
		case err == nil:
			s.closeDB()
			if err := pagelog.Apply(s.path, s.st.Checksum, d); err != nil {
				s.reset() // published; fetched again next time
				return nil
			}
			s.st.Seq, s.st.Checksum, s.st.At = d.Seq, d.Post, time.Now()
			s.bytes += int64(d.Size)
			s.remember()
			s.maybeSnapshot()
			return nil
		case errors.Is(err, errCondition), isUnknownOutcome(err):
			continue
		default:
			return err
		}
	}
	return licensing.Errorf(licensing.CodeBusy, "database %s stayed busy through %d attempts: retry the restore", s.uri, s.maxAttempts)
}

// restoreDelta builds the delta that replaces the current state with the
// file at work, with opID recorded in it.
func (s *Store) restoreDelta(ctx context.Context, work, opID string) (pagelog.Delta, error) {
	staged := work + ".staged"
	in, err := os.Open(work)
	if err != nil {
		return pagelog.Delta{}, err
	}
	err = atomicfile.WriteFrom(staged, in, 0o600)
	in.Close()
	if err != nil {
		return pagelog.Delta{}, err
	}
	defer os.Remove(staged)
	st, err := sqlitestore.Open(ctx, staged, sqlitestore.Options{Snapshot: true})
	if err != nil {
		return pagelog.Delta{}, err
	}
	err = st.RecordOperation(ctx, opID, time.Now().UTC())
	st.Close()
	if err != nil {
		return pagelog.Delta{}, err
	}
	if err := pagelog.Normalize(staged); err != nil {
		return pagelog.Delta{}, err
	}
	ps, pages, err := pagelog.AllPages(staged)
	if err != nil {
		return pagelog.Delta{}, err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return pagelog.Delta{}, err
	}
	defer f.Close()
	header := make([]byte, 100)
	if _, err := f.ReadAt(header, 0); err != nil {
		return pagelog.Delta{}, err
	}
	if cur, _ := pagelog.PageSizeOf(header); cur != ps {
		return pagelog.Delta{}, licensing.Errorf(licensing.CodeBadRequest, "the file has %d-byte pages and the database %d: restore a backup of this database (backup writes %d)", ps, cur, cur)
	}
	post, err := pagelog.Post(f, ps, s.st.Checksum, pages, uint32(len(pages)))
	if err != nil {
		return pagelog.Delta{}, err
	}
	return pagelog.Delta{Seq: s.st.Seq + 1, PageSize: ps, Pages: uint32(len(pages)), Pre: s.st.Checksum, Post: post,
		OpID: opID, Time: time.Now().UTC(), Changed: pages}, nil
}
