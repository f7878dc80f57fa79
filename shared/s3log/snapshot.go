package s3log

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
)

// SnapshotPolicy says who publishes a database's snapshot.
type SnapshotPolicy int

const (
	// SnapshotAfterWrites: a writer publishes its copy in the background
	// of its write once enough deltas follow the last snapshot (the CLI,
	// serve). It needs s3:PutObject on KEY and KEY.snapshots/.
	SnapshotAfterWrites SnapshotPolicy = iota
	// SnapshotOnRequest: writes only create deltas; PublishSnapshot
	// publishes, when something calls it (a scheduled function). A
	// process that never calls it needs no write right but on KEY.log/.
	SnapshotOnRequest
)

// SnapshotReport says what PublishSnapshot found and did.
type SnapshotReport struct {
	// Seq is the state's sequence number; SnapshotSeq the newest
	// snapshot's, afterwards. A cold start replays the deltas between.
	Seq         uint64 `json:"seq"`
	SnapshotSeq uint64 `json:"snapshot_seq"`
	// Published: this call published the snapshot.
	Published bool `json:"published"`
	// Merged is how many merged deltas this call made (those the writers
	// left missing).
	Merged int `json:"merged,omitempty"`
}

// maxFill bounds the merged deltas one PublishSnapshot makes: each is up
// to 18 GETs and a PUT, and the call runs on a schedule with a timeout.
const maxFill = 64

// snapshotMaxAge is how old the newest snapshot may grow while deltas
// follow it: a day, or a quarter of the history window if that is
// shorter. Every delta is then in a snapshot long before the window ends,
// so rules that expire deltas past the window (bucket lifecycle) never
// remove one that a reader still needs, unless the publisher has failed
// for most of the window.
func (l *Log[C]) snapshotMaxAge() time.Duration {
	return min(24*time.Hour, l.history/4)
}

// PublishSnapshot brings the working copy up to date and, when a snapshot
// is due, publishes it as KEY and into the history before it returns. A
// snapshot is due when SnapshotEvery deltas follow the newest one, or they
// add up to the database's size, or any follow it and it is older than a
// day (a quarter of the history window if shorter). This is how a process
// under SnapshotOnRequest keeps a cold start bounded; a failure is
// returned (the caller's schedule retries), and changes nothing else.
func (l *Log[C]) PublishSnapshot(ctx context.Context) (SnapshotReport, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rep SnapshotReport
	if err := l.sync(ctx, true); err != nil {
		return rep, &SyncError{err}
	}
	// The newest snapshot, whoever published it.
	info, err := l.obj.Head(ctx, l.key)
	if err != nil {
		return rep, &SyncError{Unavailable(err)}
	}
	newest, _, err := snapshotMeta(info.Meta)
	if err != nil {
		return rep, &SyncError{&CorruptError{Problem: UnreadableMetadata, Object: l.uri, Err: err}}
	}
	if newest >= l.st.BaseSeq {
		l.st.BaseSeq, l.st.BaseETag = newest, info.ETag
	}
	rep.Seq, rep.SnapshotSeq = l.st.Seq, newest
	size, err := l.stateSize()
	if err != nil || l.st.Seq <= newest || l.bgBusy {
		return rep, err
	}
	if l.st.Seq-newest < l.snapshotEvery && l.bytes < size && time.Since(info.Modified) < l.snapshotMaxAge() {
		// No snapshot due: the merged deltas a cold start reads instead
		// of the deltas since it, those the writers left missing. Best
		// effort, like the writers' own: the next call tries again.
		rep.Merged, _ = l.fillMerged(ctx, newest, maxFill)
		return rep, nil
	}
	tmp, err := l.copyState()
	if err != nil {
		return rep, err
	}
	defer os.Remove(tmp)
	seq, etag, err := l.snapshot(ctx, tmp, l.st)
	if etag != "" {
		l.newBase(seq, etag, l.st.Seq)
		rep.SnapshotSeq, rep.Published = seq, seq == l.st.Seq
	}
	return rep, err
}

// maybeSnapshot publishes the working copy as the snapshot, in the
// background, when enough deltas follow the last one: a cold start then
// reads a bounded number of deltas, and a failed snapshot never fails or
// delays the write that triggered it. Under SnapshotOnRequest it does
// nothing.
func (l *Log[C]) maybeSnapshot() {
	if l.snapshots != SnapshotAfterWrites || l.bgBusy {
		return
	}
	size, err := l.stateSize()
	if err != nil {
		return
	}
	if l.st.Seq-l.st.BaseSeq < l.snapshotEvery && l.bytes < size {
		return
	}
	tmp, err := l.copyState()
	if err != nil {
		return
	}
	st := l.st
	l.bgBusy = true
	l.bg.Go(func() {
		defer os.Remove(tmp)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		baseSeq, baseETag, _ := l.snapshot(ctx, tmp, st)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.bgBusy = false
		if baseETag != "" {
			l.newBase(baseSeq, baseETag, st.Seq)
		}
	})
}

// newBase records the newest snapshot seen after publishing the state at
// published.
func (l *Log[C]) newBase(seq uint64, etag string, published uint64) {
	if seq >= l.st.BaseSeq {
		l.st.BaseSeq, l.st.BaseETag = seq, etag
		if seq == published {
			l.bytes = 0
		}
	}
}

func (l *Log[C]) stateSize() (int64, error) {
	fp, err := l.fingerprint() // never through a link
	return fp.size, err
}

// copyState copies the working copy to a private file, which the caller
// removes: the working copy moves on while the copy uploads.
func (l *Log[C]) copyState() (string, error) {
	src, err := l.cache.open(l.path, os.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp := filepath.Join(l.cacheDir, ".snapshot-"+randomID()+".db")
	return tmp, atomicfile.WriteFrom(tmp, src, 0o600)
}

// snapshot uploads path (state st) as KEY, If-Match the snapshot st knew,
// and copies it into the history. It returns the newest snapshot it saw
// (etag "" if none), and why it could not publish or keep the history
// copy.
func (l *Log[C]) snapshot(ctx context.Context, path string, st slotMeta) (uint64, string, error) {
	if st.BaseSeq == 0 {
		l.keepFirstSnapshot(ctx, st.BaseETag)
	}
	etag, err := l.putFile(ctx, path, l.key, st.BaseETag, st.Seq, st.Checksum, st.At)
	if errors.Is(err, ErrPreconditionFailed) {
		// Another process published a snapshot meanwhile: keep the newer.
		info, err := l.obj.Head(ctx, l.key)
		if err != nil {
			return 0, "", Unavailable(err)
		}
		seq, _, err := snapshotMeta(info.Meta)
		if err != nil {
			return 0, "", &CorruptError{Problem: UnreadableMetadata, Object: l.uri, Err: err}
		}
		if seq >= st.Seq {
			return seq, info.ETag, nil
		}
		if etag, err = l.putFile(ctx, path, l.key, info.ETag, st.Seq, st.Checksum, st.At); err != nil {
			return 0, "", Unavailable(err)
		}
	} else if err != nil {
		return 0, "", Unavailable(err)
	}
	return st.Seq, etag, Unavailable(l.obj.Copy(ctx, l.key, etag, historyKey(l.key, st.Seq)))
}

// keepFirstSnapshot copies the snapshot at sequence 0 (a new database, or
// one from before the page log) into the history before the first
// snapshot replaces it, unless it is there: the writer of delta 1 copies
// it, but a writer under SnapshotOnRequest may have no right to (best
// effort, like that copy).
func (l *Log[C]) keepFirstSnapshot(ctx context.Context, etag string) {
	if _, err := l.obj.Head(ctx, historyKey(l.key, 0)); errors.Is(err, ErrNoObject) {
		l.obj.Copy(ctx, l.key, etag, historyKey(l.key, 0))
	}
}
