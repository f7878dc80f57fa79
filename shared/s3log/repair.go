package s3log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// maxAhead is how far past the state it reached repair numbers its delta:
// a log holds at most a history window of deltas, far fewer than this.
const maxAhead = 1 << 24

// RepairReport says what Repair found and did.
type RepairReport struct {
	// Healthy: the log reads through to its end; nothing was done.
	Healthy bool `json:"healthy"`
	// Damage is what stopped the log (a gap, a delta that does not check).
	Damage string `json:"damage,omitempty"`
	// From is the sequence number of the state published: the newest
	// sound state this process reached.
	From uint64 `json:"from_seq"`
	// Published is the number of the repair's delta and snapshot.
	Published uint64 `json:"published_seq,omitempty"`
	// SkippedFrom..SkippedTo are deltas past the damage: written on a
	// state that cannot be rebuilt, their changes are not in the
	// published state (none when SkippedTo is 0).
	SkippedFrom uint64 `json:"skipped_from,omitempty"`
	SkippedTo   uint64 `json:"skipped_to,omitempty"`
	// Removed are the objects the repair deleted from the log: names no
	// delta has, and deltas numbered far past the log (planted).
	Removed []string `json:"removed,omitempty"`
}

// Repair moves the log past damage that stops its readers (a missing
// delta, one that does not check): it publishes the newest sound state it
// can reach (this machine's working copy, or the snapshot and the log up
// to the damage) as a delta holding every page, numbered after every delta
// the log holds, and as the snapshot at that number. A copy at the log's
// end applies that delta; one behind the damage meets it, finds the
// snapshot past it and starts over from there. Deltas written past the
// damage are skipped: the report names them. A log that reads through is
// left alone.
func (l *Log[C]) Repair(ctx context.Context) (RepairReport, error) {
	l.bg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	var rep RepairReport
	if _, err := l.prepare(ctx); err != nil {
		return rep, err
	}
	// Objects in the log that are no delta's stop every reader: they go
	// first, where the repairer may delete.
	objs, err := l.obj.List(ctx, l.key+".log/")
	if err != nil {
		return rep, Unavailable(err)
	}
	var foreign []string
	for _, o := range objs {
		if _, ok := seqOf(o.Key); !ok {
			foreign = append(foreign, o.Key)
		}
	}
	if len(foreign) > 0 {
		if err := l.obj.Remove(ctx, foreign); err != nil {
			return rep, &CorruptError{Problem: ForeignObject, Object: "s3://" + l.obj.Bucket() + "/" + foreign[0], Err: err}
		}
		rep.Removed = append(rep.Removed, foreign...)
	}
	// The deltas alone: repair judges them, not the merged deltas.
	damage := l.catchUpWith(ctx, false)
	switch _, damaged := isDamage(damage); {
	case damage == nil:
		// This copy reads through; does a fresh reader, from the snapshot?
		sound, err := l.freshReaderReaches(ctx)
		if err != nil || sound {
			rep.Healthy, rep.From = sound, l.st.Seq
			return rep, err
		}
		damage = fmt.Errorf("a fresh reader does not reach delta %d, which this copy holds (deleted, replaced or planted objects)", l.st.Seq)
	case !damaged:
		// Not damage in the log (S3 unreachable, a snapshot that does not
		// check, this machine's memory disagreeing): not this repair's.
		return rep, damage
	}
	rep.Damage, rep.From = damage.Error(), l.st.Seq
	refs, err := l.listDeltas(ctx, l.st.Seq)
	if err != nil {
		return rep, err
	}
	// A delta numbered implausibly far ahead was planted: numbering after
	// it would waste the numbers (or wrap them). It is removed, where the
	// repairer may delete; else an administrator must.
	for len(refs) > 0 && refs[len(refs)-1].seq-l.st.Seq > maxAhead {
		far := refs[len(refs)-1].seq
		if err := l.obj.Remove(ctx, []string{deltaKey(l.key, far)}); err != nil {
			return rep, &CorruptError{Problem: FarAhead, Object: l.uri, Delta: true, Seq: far, Next: l.st.Seq, Err: err}
		}
		rep.Removed = append(rep.Removed, deltaKey(l.key, far))
		refs = refs[:len(refs)-1]
	}
	last := l.st.Seq
	if len(refs) > 0 {
		last = refs[len(refs)-1].seq
		rep.SkippedFrom, rep.SkippedTo = l.st.Seq+1, last
	}
	// A copy that reached the end of the log holds the state delta last
	// left: the repair's delta applies to that one.
	pre := l.st.Checksum
	if last > l.st.Seq {
		if d, err := l.fetchDelta(ctx, last); err == nil {
			pre = d.Post
		}
	}
	// What is published must pass the checks every reader makes, the
	// schema's included (a planted trigger would be republished).
	l.closeCopy()
	l.cookie = 0
	if err := l.open(ctx); err != nil {
		return rep, err
	}
	l.closeCopy()
	d, err := fullImage(l.path)
	if err != nil {
		return rep, err
	}
	if d.Post != l.st.Checksum {
		return rep, &CorruptError{Problem: UnreadableHeader, Object: l.uri, Err: errors.New("the working copy changed under the repair")}
	}
	now := time.Now().UTC()
	d.Seq, d.Pre, d.OpID, d.Time = last+1, pre, randomID(), now
	if err := l.publish(ctx, &d); err != nil {
		if errors.Is(err, ErrConflict) {
			return rep, fmt.Errorf("%w: delta %d was written while the repair ran; run it again", ErrConflict, d.Seq)
		}
		return rep, err
	}
	l.st.Seq, l.st.At = d.Seq, now
	l.confirmed = confirmedState{Seq: d.Seq, Checksum: d.Post, At: now}
	l.remember()
	rep.Published = d.Seq
	// The snapshot past the damage, for the copies behind it.
	info, err := l.obj.Head(ctx, l.key)
	if err != nil {
		return rep, Unavailable(err)
	}
	current, _, _ := snapshotMeta(info.Meta)
	// The numbers missing between the snapshot and the repair's delta get
	// a tombstone: a process still behind the damage then cannot commit
	// into a hole (its put-if-absent fails), and meets the tombstone,
	// which does not decode, then the snapshot past it.
	if logged, err := l.listDeltas(ctx, current); err == nil {
		present := map[uint64]bool{}
		for _, r := range logged {
			present[r.seq] = true
		}
		for seq := current + 1; seq < d.Seq; seq++ {
			if !present[seq] {
				l.obj.Put(ctx, deltaKey(l.key, seq), bytes.NewReader(tombstone), int64(len(tombstone)), PutOptions{IfAbsent: true})
			}
		}
	}
	baseSeq, etag, err := l.snapshot(ctx, l.path, slotMeta{URI: l.uri, Seq: d.Seq, Checksum: d.Post, At: now, BaseSeq: current, BaseETag: info.ETag})
	if err != nil || baseSeq < d.Seq {
		return rep, fmt.Errorf("%w: the repair's delta %d is published but its snapshot is not (%v): run repair again", ErrUnavailable, d.Seq, err)
	}
	l.st.BaseSeq, l.st.BaseETag, l.bytes = baseSeq, etag, 0
	return rep, nil
}

// tombstone fills a missing number after a repair: no delta's encoding.
var tombstone = []byte("CAIO tombstone: this number was missing when the log was repaired\n")

// freshReaderReaches reports whether a process with no copy and no memory
// reaches this copy's state: it is run, in a private directory, as one
// (the snapshot checked against its delta, every delta applied, the schema
// checked).
func (l *Log[C]) freshReaderReaches(ctx context.Context) (bool, error) {
	dir, err := os.MkdirTemp(l.cacheDir, ".repair-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	fresh, err := New(l.obj, l.key, Config[C]{Open: l.openCopy, CacheDir: dir, History: l.history, Snapshots: SnapshotOnRequest})
	if err != nil {
		return false, err
	}
	defer fresh.Close()
	if err := fresh.Sync(ctx); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return false, err
		}
		return false, nil // what stops it is the damage
	}
	return fresh.st.Seq == l.st.Seq && fresh.st.Checksum == l.st.Checksum, nil
}

// fullImage is a delta holding every page of the database file at path,
// with the file's state checksum as its Post.
func fullImage(path string) (pagelog.Delta, error) {
	f, err := os.Open(path)
	if err != nil {
		return pagelog.Delta{}, err
	}
	defer f.Close()
	header := make([]byte, 100)
	if _, err := io.ReadFull(f, header); err != nil {
		return pagelog.Delta{}, err
	}
	ps, err := pagelog.PageSizeOf(header)
	if err != nil {
		return pagelog.Delta{}, err
	}
	info, err := f.Stat()
	if err != nil {
		return pagelog.Delta{}, err
	}
	n := uint32(info.Size() / int64(ps))
	d := pagelog.Delta{PageSize: ps, Pages: n, Changed: make([]pagelog.Page, n)}
	for i := range n {
		data := make([]byte, ps)
		if _, err := f.ReadAt(data, int64(i)*int64(ps)); err != nil {
			return pagelog.Delta{}, err
		}
		d.Changed[i] = pagelog.Page{No: i + 1, Data: data}
		d.Post ^= pagelog.PageSum(i+1, data)
	}
	return d, nil
}
