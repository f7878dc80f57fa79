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

// catchUpOnce lists the deltas after the working copy's state, then fetches
// and applies them a batch at a time, each batch in parallel. A current
// process spends the one listing. The listing also shows what a 404 could
// not: a delta missing while later ones exist is a gap, never an end, and
// nothing past it is applied. A snapshot just loaded is checked against its
// own delta when the log still holds it.
func (l *Log[C]) catchUpOnce(ctx context.Context) error {
	after := l.st.Seq
	verify := l.verifyBase && after > 0
	l.verifyBase = false
	if verify {
		after-- // list the snapshot's own delta too
	}
	refs, err := l.listDeltas(ctx, after)
	if err != nil {
		return err
	}
	if verify {
		if len(refs) > 0 && refs[0].seq == l.st.Seq {
			if err := l.checkBase(ctx); err != nil {
				return err
			}
			refs = refs[1:]
		} else if c := l.confirmed; !c.At.IsZero() && c.Seq > 0 && l.st.Seq > c.Seq {
			// Newer than what this machine confirmed, so written since:
			// its delta cannot have been pruned. A snapshot numbered past
			// the log is an older state relabelled.
			return &CorruptError{Problem: SnapshotDisagrees, Object: l.uri, Claimed: l.st.Seq,
				Err: errors.New("the log holds no delta with its number")}
		} else if err := l.checkNumberedInLog(ctx); err != nil {
			return err
		}
	}
	// Up to a gap the log is sound: that much is applied, nothing past it.
	var gap error
	for i, r := range refs {
		if want := l.st.Seq + 1 + uint64(i); r.seq != want {
			gap = &CorruptError{Problem: Gap, Object: l.uri, Delta: true, Seq: want, Next: r.seq}
			refs = refs[:i]
			break
		}
	}
	if len(refs) > 0 {
		l.closeCopy()
		os.Remove(l.path + "-wal")
		defer l.remember()
	}
	limit := l.deltaLimit()
	for len(refs) > 0 {
		batch := fetchBatch(refs)
		raws, err := l.fetchRaws(ctx, batch, limit)
		// Decoded and applied one at a time: however many were fetched at
		// once, one delta's pages are in memory.
		for i, raw := range raws {
			d, derr := l.decode(batch[i].seq, raw, &l.st.Checksum, limit)
			if derr != nil {
				return derr
			}
			if aerr := l.apply(&d); aerr != nil {
				return aerr
			}
		}
		switch {
		case errors.Is(err, ErrNoObject):
			// Listed a moment ago, gone now: deleted under us.
			return &CorruptError{Problem: Gap, Object: l.uri, Delta: true, Seq: batch[len(raws)].seq, Next: refs[len(refs)-1].seq}
		case err != nil:
			return err
		}
		refs = refs[len(batch):]
	}
	if gap != nil {
		return gap
	}
	l.st.At = time.Now() // known current
	return l.confirm()
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

// checkBase checks the snapshot just loaded against its own delta: the
// state that delta left is the snapshot's, or the snapshot is not what its
// number says.
func (l *Log[C]) checkBase(ctx context.Context) error {
	d, err := l.fetchDelta(ctx, l.st.Seq)
	switch {
	case errors.Is(err, ErrNoObject):
		return nil // pruned meanwhile
	case err != nil:
		return err
	case d.Post != l.st.Checksum:
		return &CorruptError{Problem: SnapshotDisagrees, Object: l.uri, Claimed: l.st.Seq,
			Err: fmt.Errorf("its state is not the one delta %d left", l.st.Seq)}
	}
	return nil
}

// Bounds on what a catch-up holds: at most prefetch deltas fetched at
// once, and at most batchBytes of them (encoded, as listed) unless one
// alone is larger.
const batchBytes = 64 << 20

// fetchBatch is the run of refs fetched together.
func fetchBatch(refs []deltaRef) []deltaRef {
	n, total := 0, int64(0)
	for n < len(refs) && n < prefetch && (n == 0 || total+refs[n].size <= batchBytes) {
		total += refs[n].size
		n++
	}
	return refs[:n]
}

// fetchRaws downloads the deltas of batch in parallel and returns the run
// of them that arrived, with the error that ended it.
func (l *Log[C]) fetchRaws(ctx context.Context, batch []deltaRef, limit int64) ([][]byte, error) {
	raws := make([][]byte, len(batch))
	errs := make([]error, len(batch))
	if len(batch) == 1 { // the common case: one behind
		raws[0], errs[0] = l.fetchRaw(ctx, batch[0].seq, limit)
	} else {
		var wg sync.WaitGroup
		for i, r := range batch {
			wg.Go(func() { raws[i], errs[i] = l.fetchRaw(ctx, r.seq, limit) })
		}
		wg.Wait()
	}
	for i := range batch {
		if errs[i] != nil {
			return raws[:i], errs[i]
		}
	}
	return raws, nil
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
	var misnumbered, foreign bool
	var claimed uint64
	d, err := pagelog.DecodeChecked(raw, limit, func(h pagelog.Delta) error {
		claimed, misnumbered = h.Seq, h.Seq != seq
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
