package s3log

import (
	"bytes"
	"context"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// Update runs an operation on the working copy and commits the pages it
// changed as the next delta, retrying on conflicts; see the package
// comment for the protocol.
//
// check, if not nil, runs before each attempt on the caught-up copy (a
// schema version check): its error ends the write. run does the write in
// one transaction that records opID with it, and reports whether it
// changed anything; it may run several times, each time on a newer state.
// Their errors are returned as they are; the log's own are wrapped in a
// SyncError when met bringing the copy up to date, and a write that every
// attempt failed is a RetriesError.
func (l *Log[C]) Update(ctx context.Context, check func(C) error, run func(db C, opID string) (changed bool, err error)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	opID := randomID()
	maybeApplied := false // an earlier attempt's PUT has an unknown outcome
	var lastErr error
	start := time.Now()
	for attempt := 1; attempt <= l.maxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, attempt); err != nil {
				return err
			}
		}
		// The first attempt runs on the state at hand: a write's commit
		// checks that nothing came after it, and a refusal or a no-op is
		// checked below before it is believed.
		optimistic := attempt == 1
		if err := l.sync(ctx, !optimistic); err != nil {
			if errors.Is(err, ErrUnavailable) {
				lastErr = err
				continue // transient: S3 unreachable or 5xx
			}
			return &SyncError{err}
		}
		// After any failed attempt, our write may have landed: an unknown
		// outcome, or an SDK-level retry of a PUT that had already been
		// applied (which then fails its own condition).
		if attempt > 1 {
			landed, err := l.db.HasOperation(ctx, opID)
			if err != nil {
				return err
			}
			if landed {
				return nil
			}
		}
		if check != nil {
			if err := check(l.db); err != nil {
				return err
			}
		}
		seq := l.st.Seq
		err := l.attempt(ctx, opID, run, optimistic)
		switch {
		case err == nil:
			if l.st.Seq != seq {
				l.metrics.Count(metrics.S3Commits, 1, "outcome", "committed")
				l.metrics.Observe(metrics.S3CommitLatency, float64(time.Since(start).Microseconds())/1000)
				l.metrics.Gauge(metrics.DatabaseBytes, float64(l.fp.size)) // as attempt just recorded it
			}
			return nil
		case errors.Is(err, ErrConflict):
			l.metrics.Count(metrics.S3Commits, 1, "outcome", "conflict")
			lastErr = err
		case errors.Is(err, ErrUnknownOutcome):
			l.metrics.Count(metrics.S3Commits, 1, "outcome", "unknown")
			maybeApplied, lastErr = true, err
		default:
			return err
		}
	}
	l.metrics.Count(metrics.S3CommitRetriesExhausted, 1)
	return &RetriesError{Attempts: l.maxAttempts, MaybeApplied: maybeApplied, Last: lastErr}
}

// attempt runs the operation on the working copy and publishes its pages.
// An optimistic attempt that wrote nothing (a refusal, a no-op) stands only
// if the state it ran on is still current; else ErrConflict re-runs it.
func (l *Log[C]) attempt(ctx context.Context, opID string, run func(C, string) (bool, error), optimistic bool) error {
	changed, err := run(l.db, opID)
	if err != nil || !changed {
		// Nothing committed, as a rule; should a commit be there, it must
		// not reach the next write's delta.
		if _, pages, _, werr := pagelog.ReadWAL(l.path + "-wal"); werr != nil || len(pages) > 0 {
			l.discard()
		}
		if optimistic {
			seq := l.st.Seq
			if cerr := l.catchUp(ctx); cerr != nil {
				return cerr
			}
			if l.st.Seq != seq {
				return ErrConflict
			}
		}
		return err
	}
	pageSize, pages, size, err := pagelog.ReadWAL(l.path + "-wal")
	if err == nil && len(pages) == 0 {
		err = errors.New("the commit left no pages in the WAL")
	}
	if err != nil {
		l.discard()
		return &CommitError{URI: l.uri, Step: ReadingPages, Err: err}
	}
	f, err := l.cache.open(l.path, os.O_RDONLY)
	if err != nil {
		l.discard()
		return err
	}
	post, err := pagelog.Post(f, pageSize, l.st.Checksum, pages, size)
	f.Close()
	if err != nil {
		l.discard()
		return &CommitError{URI: l.uri, Step: ComputingState, Err: err}
	}
	now := time.Now().UTC()
	d := pagelog.Delta{Seq: l.st.Seq + 1, PageSize: pageSize, Pages: size, Pre: l.st.Checksum, Post: post, OpID: opID, Time: now, Changed: pages}
	if err := l.publish(ctx, &d); err != nil {
		l.discard()
		return err
	}
	// Published: the WAL's pages become the main file's.
	if err := l.db.Checkpoint(ctx); err != nil {
		l.reset() // published; the next operation fetches it again
		return nil
	}
	l.st.Seq, l.st.Checksum, l.st.At = d.Seq, post, now
	l.confirmed = confirmedState{Seq: d.Seq, Checksum: post, At: now}
	l.bytes += int64(d.Size)
	l.remember()
	l.maybeSnapshot()
	l.keepRecent(&d)
	l.maybeMerge(&d)
	return nil
}

// publish creates the delta's object: put-if-absent on its number.
func (l *Log[C]) publish(ctx context.Context, d *pagelog.Delta) error {
	enc, err := pagelog.Encode(*d)
	if err != nil {
		return err
	}
	d.Size = len(enc)
	_, err = l.obj.Put(ctx, deltaKey(l.key, d.Seq), bytes.NewReader(enc), int64(len(enc)), PutOptions{IfAbsent: true})
	if err != nil {
		var ce *ConfigError
		switch {
		case errors.Is(err, ErrPreconditionFailed):
			return errors.Join(ErrConflict, err)
		case errors.As(err, &ce):
			return err
		}
		return unknownOutcome{err}
	}
	if d.Seq == 1 && l.st.BaseSeq == 0 && l.snapshots == SnapshotAfterWrites {
		// The first delta after a whole-object database: keep that
		// object as the history's first snapshot (best effort). Where
		// writes only create deltas, the snapshot publisher keeps it.
		l.obj.Copy(ctx, l.key, l.st.BaseETag, historyKey(l.key, 0))
	}
	return nil
}

// discard drops an unpublished commit: the main file still holds the
// state before it.
func (l *Log[C]) discard() {
	if l.isOpen {
		l.db.Discard()
		l.forgetCopy()
	}
}

// Create publishes a new database as the snapshot at sequence 0, if none
// exists; build writes it at path. It reports whether it did.
func (l *Log[C]) Create(ctx context.Context, build func(path string) error) (bool, error) {
	tmp, err := os.MkdirTemp(l.cacheDir, ".new-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "new.db")
	if err := build(path); err != nil {
		return false, err
	}
	if err := pagelog.Normalize(path); err != nil {
		return false, err
	}
	sum, err := pagelog.Checksum(path)
	if err != nil {
		return false, err
	}
	if _, err := l.putFile(ctx, path, l.key, "", 0, sum, time.Now()); err != nil {
		if errors.Is(err, ErrPreconditionFailed) {
			return false, nil // created meanwhile by someone else
		}
		return false, Unavailable(err)
	}
	// A database made anew here: what this machine confirmed of one
	// before it at the location no longer holds.
	l.forgetConfirmed()
	return true, nil
}

// putFile uploads a file as a snapshot object, streamed: If-Match ifMatch,
// or, with ifMatch "", if absent.
func (l *Log[C]) putFile(ctx context.Context, path, key, ifMatch string, seq, sum uint64, at time.Time) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	return l.obj.Put(ctx, key, f, info.Size(), PutOptions{IfMatch: ifMatch, IfAbsent: ifMatch == "", Meta: map[string]string{
		metaSeq: strconv.FormatUint(seq, 10), metaChecksum: strconv.FormatUint(sum, 16), metaTime: at.UTC().Format(time.RFC3339Nano)}})
}

func sleep(ctx context.Context, attempt int) error {
	// Full jitter: a random wait up to an exponentially growing cap.
	ceiling := baseBackoff << min(attempt-2, 6)
	if ceiling > maxBackoff {
		ceiling = maxBackoff
	}
	t := time.NewTimer(mrand.N(ceiling))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
