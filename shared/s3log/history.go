package s3log

import (
	"context"
	"errors"
	"fmt"
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
	MergedRemoved    int       `json:"merged_removed,omitempty"`
	OldestPoint      time.Time `json:"oldest_point_in_time,omitzero"`
}

// seqOf reads the sequence number from a delta or history key.
// Only the names the log writes count: exactly 20 digits ("2" is not
// delta 2, and a name of junk is nobody's delta).
func seqOf(key string) (uint64, bool) {
	name := strings.TrimSuffix(key[strings.LastIndex(key, "/")+1:], ".db")
	if len(name) != 20 || strings.ContainsFunc(name, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false
	}
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
	// Merged deltas go with the deltas they merge (a reader after keep
	// never needs them).
	merged, err := l.obj.List(ctx, mergedPrefix(l.key))
	if err != nil {
		return PruneReport{}, Unavailable(err)
	}
	for _, o := range merged {
		if m, ok := parseMerged(o.Key); ok && m.last <= keep && o.Modified.Before(cutoff) {
			remove = append(remove, o.Key)
			rep.MergedRemoved++
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
	// The deltas after it, as the listing names them: a gap stops the
	// rebuild with an error, never silently at an earlier state; the base
	// is checked against its own delta while the log holds it.
	after := seq
	if seq > 0 {
		after--
	}
	refs, err := l.listDeltas(ctx, after)
	if err != nil {
		return err
	}
	if len(refs) > 0 && refs[0].seq == seq && seq > 0 {
		if d, err := l.fetchDelta(ctx, seq); err == nil && d.Post != sum {
			return &CorruptError{Problem: SnapshotDisagrees, Object: "s3://" + l.obj.Bucket() + "/" + snaps[base].key, Claimed: seq,
				Err: fmt.Errorf("its state is not the one delta %d left", seq)}
		}
		refs = refs[1:]
	}
	for i, r := range refs {
		next := seq + 1 + uint64(i)
		if r.seq != next {
			return &CorruptError{Problem: Gap, Object: l.uri, Delta: true, Seq: next, Next: r.seq}
		}
		d, err := l.fetchDelta(ctx, next)
		if errors.Is(err, ErrNoObject) {
			return &CorruptError{Problem: Gap, Object: l.uri, Delta: true, Seq: next, Next: refs[len(refs)-1].seq}
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
