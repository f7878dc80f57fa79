package s3log

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
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
	loaded, err := l.prepare(ctx)
	if err != nil {
		return err
	}
	remote = remote || loaded
	if remote || l.unsure {
		// After a failed catch-up the copy's place in the log is unknown:
		// an optimistic write could land in a gap it had found.
		l.unsure = true
		if err := l.catchUp(ctx); err != nil {
			return err
		}
		l.unsure = false
	} else if err := l.confirmed.check(l.uri, l.confirmedPath, l.st); err != nil {
		return err
	}
	return l.open(ctx)
}

// prepare makes the working copy one this process may trust, loading it
// (from the slot or the snapshot) when it has none; loaded says it did.
// Every operation starts here.
func (l *Log[C]) prepare(ctx context.Context) (loaded bool, err error) {
	// Before anything opens the slot's files by path: no link in them.
	if err := l.checkSlot(); err != nil {
		return false, err
	}
	if l.loaded {
		// The copy is this process's; anything else that changed it (or a
		// state left unconfirmed too long) sends it back to a snapshot.
		fp, err := l.fingerprint()
		if err != nil || fp != l.fp || time.Since(l.st.At) > l.trustFor() {
			l.reset()
		}
	}
	if l.loaded {
		return false, nil
	}
	return true, l.load(ctx)
}

// reset forgets the working copy.
func (l *Log[C]) reset() {
	l.closeCopy()
	l.loaded = false
	l.recent = nil
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
	l.loaded, l.bytes, l.cookie, l.verifyBase = true, 0, 0, true
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

// catchUp applies the deltas after the working copy's sequence number.
// When damage stops it (a gap, a delta that does not check) and a snapshot
// past the damage exists, as repair publishes, the copy starts over from
// that snapshot: one HEAD, spent only then.
func (l *Log[C]) catchUp(ctx context.Context) error {
	err := l.catchUpOnce(ctx)
	ce, damaged := isDamage(err)
	if !damaged {
		return err
	}
	past, herr := l.snapshotPast(ctx, ce.Seq)
	if herr != nil || !past {
		return err
	}
	l.reset()
	if err := l.loadSnapshot(ctx); err != nil {
		return err
	}
	return l.catchUpOnce(ctx)
}

// snapshotPast reports whether the snapshot is past seq and past the
// working copy.
func (l *Log[C]) snapshotPast(ctx context.Context, seq uint64) (bool, error) {
	info, err := l.obj.Head(ctx, l.key)
	if err != nil {
		return false, Unavailable(err)
	}
	s, _, err := snapshotMeta(info.Meta)
	return err == nil && s >= seq && s > l.st.Seq, nil
}

// catchUpOnce brings the working copy to the end of the log, through
// merged deltas where they save requests (merged.go). When a merged delta
// fails (missing, damaged, or not leading where the deltas do), the
// deltas are the truth: the copy starts over from the snapshot without the
// merged deltas that may have led it astray (this process passes them over
// from then on), and after a second failure with the deltas alone, which
// then apply or are refused as they always were.
func (l *Log[C]) catchUpOnce(ctx context.Context) error {
	for try := 0; ; try++ {
		err := l.catchUpWith(ctx, try < 2)
		var mf *mergedFailed
		if !errors.As(err, &mf) {
			return err
		}
		l.distrust(mf.Suspects)
		l.reset()
		if err := l.loadSnapshot(ctx); err != nil {
			return err
		}
	}
}

// catchUpWith lists the deltas after the working copy's state, plans the
// objects to fetch (with merged deltas, when allowed) and applies them in
// order as they arrive. A current process spends the one listing; a cold
// one (a snapshot just loaded) lists the deltas and the merged deltas at
// once, then fetches its whole plan at once: three round trips from the
// snapshot's GET (past a thousand deltas too: see beyond). The listing
// also shows what a 404 could not: a delta missing while later ones exist
// is a gap, never an end, and nothing past it is applied. A snapshot just
// loaded is checked against its own delta when the log still holds it.
func (l *Log[C]) catchUpWith(ctx context.Context, useMerged bool) error {
	cold := l.verifyBase
	verify := l.verifyBase && l.st.Seq > 0
	l.verifyBase = false
	var merged []mergedRef
	var refs []deltaRef
	var more bool
	var err error
	if useMerged && cold {
		var wg sync.WaitGroup
		wg.Go(func() { merged, _ = l.listMerged(ctx, l.st.Seq) })
		refs, more, err = l.listDeltasPage(ctx, l.st.Seq)
		wg.Wait()
	} else {
		refs, err = l.listDeltas(ctx, l.st.Seq)
		if err == nil && useMerged && len(refs) > mergeFanIn {
			// Far behind: one more listing saves most of the fetches.
			merged, _ = l.listMerged(ctx, l.st.Seq)
		}
	}
	if err != nil {
		return err
	}
	// Merged deltas are optional: without a listing of them (a failure,
	// no right to list them), the deltas alone are read.
	var steps []step
	if verify {
		// Fetched with the plan, not listed: listing it would cost a
		// second page at 1,000 deltas (run checks it, or its absence).
		steps = append(steps, step{seq: l.st.Seq, kind: base})
	}
	refs, gap := l.sound(l.st.Seq, refs)
	var stop uint64
	if c := l.confirmed; !c.At.IsZero() && c.Seq > l.st.Seq {
		stop = c.Seq
	}
	if more && gap == nil {
		return l.beyond(ctx, steps, refs, merged, stop)
	}
	steps = append(steps, plan(l.st.Seq, refs, merged, stop)...)
	if len(refs) > 0 {
		l.closeCopy()
		os.Remove(l.path + "-wal")
		defer l.remember()
	}
	if err := l.run(ctx, steps, refs, nil); err != nil {
		return err
	}
	if gap != nil {
		return gap
	}
	l.st.At = time.Now() // known current
	return l.confirm()
}

// sound is the run of refs that follows seq with no gap, and the gap that
// ends it, if any: up to a gap the log is sound, and that much is applied,
// nothing past it.
func (l *Log[C]) sound(seq uint64, refs []deltaRef) ([]deltaRef, error) {
	for i, r := range refs {
		if want := seq + 1 + uint64(i); r.seq != want {
			return refs[:i], &CorruptError{Problem: Gap, Object: l.uri, Delta: true, Seq: want, Next: r.seq}
		}
	}
	return refs, nil
}

// deltaRef is a delta the listing named: its number and encoded size.
type deltaRef struct {
	seq  uint64
	size int64
}

// listDeltas lists the deltas after seq, in order.
func (l *Log[C]) listDeltas(ctx context.Context, seq uint64) ([]deltaRef, error) {
	objs, err := l.obj.ListAfter(ctx, l.key+".log/", deltaKey(l.key, seq))
	if err != nil {
		return nil, Unavailable(err)
	}
	return l.deltaRefs(objs, seq)
}

// listDeltasPage lists the first page of the deltas after seq (a
// thousand), and whether more follow.
func (l *Log[C]) listDeltasPage(ctx context.Context, seq uint64) ([]deltaRef, bool, error) {
	objs, more, err := l.obj.ListPage(ctx, l.key+".log/", deltaKey(l.key, seq))
	if err != nil {
		return nil, false, Unavailable(err)
	}
	refs, err := l.deltaRefs(objs, seq)
	return refs, more, err
}

// deltaRefs are the deltas after seq a listing names, in order.
func (l *Log[C]) deltaRefs(objs []Listed, seq uint64) ([]deltaRef, error) {
	refs := make([]deltaRef, 0, len(objs))
	for _, o := range objs {
		n, ok := seqOf(o.Key)
		switch {
		case !ok:
			// Nothing but deltas belongs here: junk would cost every
			// read a longer listing, or pass for a delta.
			return nil, &CorruptError{Problem: ForeignObject, Object: "s3://" + l.obj.Bucket() + "/" + o.Key}
		case n > seq:
			refs = append(refs, deltaRef{n, o.Size})
		}
	}
	slices.SortFunc(refs, func(a, b deltaRef) int { return cmp.Compare(a.seq, b.seq) })
	return refs, nil
}

// baseMissing is the check of a snapshot whose own delta the log does not
// hold: pruned, or never written (a snapshot numbered past the log).
func (l *Log[C]) baseMissing(ctx context.Context) error {
	if c := l.confirmed; !c.At.IsZero() && c.Seq > 0 && l.st.Seq > c.Seq {
		// Newer than what this machine confirmed, so written since: its
		// delta cannot have been pruned. A snapshot numbered past the log
		// is an older state relabelled.
		return &CorruptError{Problem: SnapshotDisagrees, Object: l.uri, Claimed: l.st.Seq,
			Err: errors.New("the log holds no delta with its number")}
	}
	return l.checkNumberedInLog(ctx)
}

// checkNumberedInLog refuses a snapshot whose own delta is absent while an
// earlier one is there: the log loses deltas oldest first (pruning, expiry),
// so that snapshot is numbered past a log that never reached it (an older
// state relabelled). One request, on this path only.
func (l *Log[C]) checkNumberedInLog(ctx context.Context) error {
	first, ok, err := l.obj.First(ctx, l.key+".log/")
	if err != nil {
		return Unavailable(err)
	}
	if n, isDelta := seqOf(first.Key); ok && isDelta && n < l.st.Seq {
		return &CorruptError{Problem: SnapshotDisagrees, Object: l.uri, Claimed: l.st.Seq,
			Err: fmt.Errorf("the log holds delta %d before it but not its own", n)}
	}
	return nil
}

// deltaLimit bounds the bytes a delta's pages may inflate to: four times
// the database (a restore writes every page of a database that may have
// grown) and at least 512 MiB, never past pagelog.MaxDeltaBytes. A crafted
// delta that declares more is refused before anything is allocated.
func (l *Log[C]) deltaLimit() int64 {
	limit := int64(512 << 20)
	if fp, err := l.fingerprint(); err == nil {
		limit = max(limit, 4*fp.size)
	}
	return min(limit, pagelog.MaxDeltaBytes)
}

// fetchRaw downloads delta seq, reading no more than a delta within the
// limit can take.
func (l *Log[C]) fetchRaw(ctx context.Context, seq uint64, limit int64) ([]byte, error) {
	body, _, err := l.obj.Get(ctx, deltaKey(l.key, seq))
	if errors.Is(err, ErrNoObject) {
		return nil, err
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	return l.readRaw(body, seq, limit)
}

// readRaw reads and closes the body of delta (or merged delta) seq,
// reading no more than a delta within the limit can take.
func (l *Log[C]) readRaw(body io.ReadCloser, seq uint64, limit int64) ([]byte, error) {
	defer body.Close()
	most := pagelog.MaxEncodedSize(limit)
	raw, err := io.ReadAll(io.LimitReader(body, most+1))
	if isChecksumMismatch(err) {
		return nil, l.badDelta(DamagedInStorage, seq, err)
	}
	if err != nil {
		return nil, Unavailable(err)
	}
	if int64(len(raw)) > most {
		return nil, l.badDelta(Undecodable, seq, fmt.Errorf("larger than any delta this database can have (%d bytes)", most))
	}
	return raw, nil
}

// decode decodes delta seq within the limit and checks its number, and,
// when pre is given, that it applies to that state: from its header,
// before a page is inflated.
func (l *Log[C]) decode(seq uint64, raw []byte, pre *uint64, limit int64) (pagelog.Delta, error) {
	return l.decodeSpan(0, seq, raw, pre, limit)
}

// decodeSpan is decode for the merged delta of first..seq (first 0: a
// delta), whose header must name that span.
func (l *Log[C]) decodeSpan(first, seq uint64, raw []byte, pre *uint64, limit int64) (pagelog.Delta, error) {
	var misnumbered, foreign bool
	var claimed uint64
	d, err := pagelog.DecodeChecked(raw, limit, func(h pagelog.Delta) error {
		claimed, misnumbered = h.Seq, h.Seq != seq || h.First != first
		foreign = pre != nil && h.Pre != *pre
		if misnumbered || foreign {
			return errNotThisDelta
		}
		return nil
	})
	switch {
	case misnumbered:
		e := l.badDelta(Misnumbered, seq, nil)
		e.Claimed = claimed
		return d, e
	case foreign:
		return d, l.badDelta(DoesNotApply, seq, errors.New("it applies to another state than the one held"))
	case err != nil:
		return d, l.badDelta(Undecodable, seq, err)
	}
	return d, nil
}

var errNotThisDelta = errors.New("not the delta wanted")

// fetchDelta downloads and decodes delta seq.
func (l *Log[C]) fetchDelta(ctx context.Context, seq uint64) (*pagelog.Delta, error) {
	limit := l.deltaLimit()
	raw, err := l.fetchRaw(ctx, seq, limit)
	if err != nil {
		return nil, err
	}
	d, err := l.decode(seq, raw, nil, limit)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (l *Log[C]) badDelta(p Problem, seq uint64, err error) *CorruptError {
	return &CorruptError{Problem: p, Object: l.uri, Delta: true, Seq: seq, Err: err}
}

// apply writes one delta to the closed working copy, checked against the
// state it holds first.

func (l *Log[C]) apply(d *pagelog.Delta) error {
	if err := pagelog.Apply(l.path, l.st.Checksum, *d); err != nil {
		return l.badDelta(DoesNotApply, d.Seq, err)
	}
	if err := l.passes(d.Seq, d.Post); err != nil {
		l.reset() // never kept: a later catch-up would start past the check
		return err
	}
	l.st.Seq, l.st.Checksum = d.Seq, d.Post
	l.bytes += int64(d.Size)
	l.keepRecent(d)
	return nil
}

// applyMerged writes merged delta d to the closed working copy: as a
// delta when the state held is the one before its span, else over the
// state held, inside its span; either way checked by the state it leads
// to before a page is written. bytes is what the deltas it stands for
// weigh (the snapshot's byte count goes by the deltas).
func (l *Log[C]) applyMerged(d *pagelog.Delta, bytes int64) error {
	var err error
	if d.First == l.st.Seq+1 {
		err = pagelog.Apply(l.path, l.st.Checksum, *d)
	} else {
		err = pagelog.ApplyOver(l.path, l.st.Checksum, *d)
	}
	if err != nil {
		return l.badDelta(DoesNotApply, d.Seq, err)
	}
	if err := l.passes(d.Seq, d.Post); err != nil {
		return err
	}
	l.st.Seq, l.st.Checksum = d.Seq, d.Post
	l.bytes += bytes
	l.recent = nil
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
	checked := cookie == l.cookie && l.cookie != 0
	db, err := l.openCopy(ctx, l.path, checked)
	if err != nil {
		l.reset() // fetched again next time
		return err
	}
	if err := l.openedSame(); err != nil {
		db.Close()
		return err
	}
	digest, err := db.SchemaDigest(ctx)
	if err == nil && checked && digest != l.schema {
		// The schema moved under an unchanged cookie (a delta put it
		// back): check it as a new one.
		db.Close()
		if db, err = l.openCopy(ctx, l.path, false); err != nil {
			l.reset()
			return err
		}
	}
	if err != nil {
		db.Close()
		return err
	}
	l.db, l.isOpen, l.cookie, l.schema = db, true, cookie, digest
	return nil
}
