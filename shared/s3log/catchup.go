package s3log

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// sync opens the working copy, catching up with S3 unless remote is false
// and the copy is warm (an optimistic write: its put-if-absent fails if
// anything came after the state it ran on).
func (l *Log[C]) sync(ctx context.Context, remote bool) error {
	// Before anything opens the slot's files by path: no link in them.
	if err := l.checkSlot(); err != nil {
		return err
	}
	if l.loaded {
		// The copy is this process's; anything else that changed it (or a
		// state left unconfirmed too long) sends it back to a snapshot.
		fp, err := l.fingerprint()
		if err != nil || fp != l.fp || time.Since(l.st.At) > l.trustFor() {
			l.reset()
		}
	}
	if !l.loaded {
		if err := l.load(ctx); err != nil {
			return err
		}
		remote = true
	}
	if remote {
		if err := l.catchUp(ctx); err != nil {
			return err
		}
	}
	return l.open(ctx)
}

// reset forgets the working copy.
func (l *Log[C]) reset() {
	l.closeCopy()
	l.loaded = false
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(l.path + suffix)
	}
	os.Remove(metaPath(l.path))
}

// load takes over the state a previous holder of the slot left, if it
// checks out, or else reads the newest snapshot.
func (l *Log[C]) load(ctx context.Context) error {
	if m, err := l.readMeta(); err == nil && m.URI == l.uri && time.Since(m.At) < l.trustFor() {
		os.Remove(l.path + "-wal") // an unpublished commit of a process that died
		if err := pagelog.Normalize(l.path); err == nil {
			if sum, err := pagelog.Checksum(l.path); err == nil && sum == m.Checksum {
				l.st, l.loaded = m, true
				return l.remember()
			}
		}
	}
	l.reset()
	return l.loadSnapshot(ctx)
}

// loadSnapshot downloads KEY into the working copy.
func (l *Log[C]) loadSnapshot(ctx context.Context) error {
	seq, sum, etag, err := l.fetchSnapshot(ctx, l.key, l.path)
	if err != nil {
		return err
	}
	l.st = slotMeta{URI: l.uri, Seq: seq, Checksum: sum, At: time.Now(), BaseSeq: seq, BaseETag: etag}
	l.loaded, l.bytes, l.cookie = true, 0, 0
	return l.remember()
}

// fetchSnapshot downloads the snapshot at key to dest, streamed, and
// checks it: an SQLite file whose state checksum is the one its metadata
// records (a whole-object database from before the page log records
// none: sequence 0).
func (l *Log[C]) fetchSnapshot(ctx context.Context, key, dest string) (seq, sum uint64, etag string, err error) {
	where := "s3://" + l.obj.Bucket() + "/" + key
	bad := func(p Problem, err error) error { return &CorruptError{Problem: p, Object: where, Err: err} }
	body, info, err := l.obj.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNoObject) && key == l.key:
		return 0, 0, "", ErrNotFound
	case err != nil:
		return 0, 0, "", Unavailable(err)
	}
	defer body.Close()
	header := make([]byte, 16)
	if _, err := io.ReadFull(body, header); err != nil || string(header) != "SQLite format 3\x00" {
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return 0, 0, "", Unavailable(err)
		}
		return 0, 0, "", bad(NotSQLite, nil)
	}
	if err := atomicfile.WriteFrom(dest, io.MultiReader(bytes.NewReader(header), body), 0o600); err != nil {
		if isChecksumMismatch(err) {
			return 0, 0, "", bad(DamagedInStorage, err)
		}
		return 0, 0, "", Unavailable(err) // most likely the download broke off
	}
	if err := pagelog.Normalize(dest); err != nil {
		return 0, 0, "", bad(NotWholeDatabase, err)
	}
	if sum, err = pagelog.Checksum(dest); err != nil {
		return 0, 0, "", bad(NotWholeDatabase, err)
	}
	seq, recorded, err := snapshotMeta(info.Meta)
	if err != nil {
		return 0, 0, "", bad(UnreadableMetadata, err)
	}
	if recorded != nil && *recorded != sum {
		return 0, 0, "", bad(ChecksumMismatch, nil)
	}
	return seq, sum, info.ETag, nil
}

// snapshotMeta reads a snapshot's sequence number and checksum; an object
// without them is a whole database from before the page log: sequence 0.
func snapshotMeta(meta map[string]string) (uint64, *uint64, error) {
	get := func(k string) string {
		for mk, v := range meta {
			if strings.EqualFold(mk, k) {
				return v
			}
		}
		return ""
	}
	if get(metaSeq) == "" {
		return 0, nil, nil
	}
	seq, err := strconv.ParseUint(get(metaSeq), 10, 64)
	if err != nil {
		return 0, nil, err
	}
	sum, err := strconv.ParseUint(get(metaChecksum), 16, 64)
	if err != nil {
		return 0, nil, err
	}
	return seq, &sum, nil
}

// remember records the working copy's fingerprint after this process
// changed it.
func (l *Log[C]) remember() error {
	fp, err := l.fingerprint()
	if err != nil {
		return err
	}
	l.fp = fp
	return nil
}

// catchUp applies the deltas after the working copy's sequence number:
// one at a time, then, once it is clearly behind, a batch at a time.
func (l *Log[C]) catchUp(ctx context.Context) error {
	fetched := 0
	for {
		n := 1
		if fetched >= 2 {
			n = prefetch
		}
		ds, stop := l.fetchDeltas(ctx, l.st.Seq+1, n)
		if len(ds) > 0 {
			if err := l.apply(ds); err != nil {
				return err
			}
			fetched += len(ds)
		}
		switch {
		case errors.Is(stop, ErrNoObject):
			l.st.At = time.Now() // known current
			return nil
		case stop != nil:
			return stop
		}
	}
}

// fetchDeltas fetches n deltas from seq on, in parallel, and returns the
// run of them that exists with the error that ended it (ErrNoObject past
// the last).
func (l *Log[C]) fetchDeltas(ctx context.Context, seq uint64, n int) ([]*pagelog.Delta, error) {
	if n == 1 { // the common case: current, or one behind
		d, err := l.fetchDelta(ctx, seq)
		if err != nil {
			return nil, err
		}
		return []*pagelog.Delta{d}, nil
	}
	ds := make([]*pagelog.Delta, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ds[i], errs[i] = l.fetchDelta(ctx, seq+uint64(i)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			return ds[:i], errs[i]
		}
	}
	return ds, nil
}

// fetchDelta downloads and decodes delta seq.
func (l *Log[C]) fetchDelta(ctx context.Context, seq uint64) (*pagelog.Delta, error) {
	body, _, err := l.obj.Get(ctx, deltaKey(l.key, seq))
	if errors.Is(err, ErrNoObject) {
		return nil, err
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	defer body.Close()
	raw, err := io.ReadAll(body)
	if isChecksumMismatch(err) {
		return nil, l.badDelta(DamagedInStorage, seq, err)
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	d, err := pagelog.Decode(raw)
	if err != nil {
		return nil, l.badDelta(Undecodable, seq, err)
	}
	if d.Seq != seq {
		e := l.badDelta(Misnumbered, seq, nil)
		e.Claimed = d.Seq
		return nil, e
	}
	return &d, nil
}

func (l *Log[C]) badDelta(p Problem, seq uint64, err error) *CorruptError {
	return &CorruptError{Problem: p, Object: l.uri, Delta: true, Seq: seq, Err: err}
}

// apply writes deltas, in order, to the closed working copy; each is
// checked against the state it holds first.
func (l *Log[C]) apply(ds []*pagelog.Delta) error {
	l.closeCopy()
	os.Remove(l.path + "-wal")
	defer l.remember()
	for _, d := range ds {
		if err := pagelog.Apply(l.path, l.st.Checksum, *d); err != nil {
			return l.badDelta(DoesNotApply, d.Seq, err)
		}
		l.st.Seq, l.st.Checksum = d.Seq, d.Post
		l.bytes += int64(d.Size)
	}
	return nil
}

// open opens the working copy, letting the caller skip its schema check
// when the schema cookie has not moved since the last one.
func (l *Log[C]) open(ctx context.Context) error {
	if l.isOpen {
		return nil
	}
	cookie, err := pagelog.SchemaCookie(l.path)
	if err != nil {
		return &CorruptError{Problem: UnreadableHeader, Object: l.uri, Err: err}
	}
	db, err := l.openCopy(ctx, l.path, cookie == l.cookie && l.cookie != 0)
	if err != nil {
		l.reset() // fetched again next time
		return err
	}
	if err := l.openedSame(); err != nil {
		db.Close()
		return err
	}
	l.db, l.isOpen, l.cookie = db, true, cookie
	return nil
}
