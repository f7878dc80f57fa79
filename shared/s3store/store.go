// Package s3store keeps the licensing database in S3 as a log of page
// deltas with snapshots, safe under concurrent writers.
//
// Objects, for a database at s3://bucket/KEY:
//
//	KEY                         the newest snapshot: a whole SQLite file,
//	                            with its sequence number and state checksum
//	                            in metadata (caio-seq, caio-checksum)
//	KEY.log/<seq, 20 digits>    one delta per committed write: the pages it
//	                            changed (package pagelog)
//	KEY.snapshots/<seq>.db      earlier snapshots, for backup --at
//
// A write runs the whole operation in a transaction on this process's
// working copy (at sequence n, WAL mode, no automatic checkpoint), reads
// the pages it changed from the WAL and commits by creating KEY.log/<n+1>
// with put-if-absent: exactly one writer wins each number. The winner
// checkpoints; a loser drops its WAL, catches up (fetches the deltas it
// lacks and applies them, each checked against the state it holds) and
// re-runs the whole operation, business checks included. Success is
// reported only after S3 accepted the delta.
//
// A reader catches up the same way: a process that is current spends one
// request (a 404 on the next number) to learn so. A cold process reads KEY
// and the deltas after it. Every so many deltas a writer publishes its copy
// as KEY (If-Match the snapshot it knew) in the background of its write;
// a failed snapshot never fails the write.
//
// Every write records a random operation id in the database. When a PUT's
// outcome is unknown (a dropped connection, a 5xx after the server may
// have applied it), the next attempt catches up and looks for that id:
// found, the write landed and is reported as done; not found, it is re-run.
//
// A database that is one whole object at KEY, as earlier builds wrote it,
// is the snapshot at sequence 0: it is adopted with no step, and stays
// readable as it was.
package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Retry bounds for conflicting writers.
const (
	DefaultMaxAttempts = 25
	baseBackoff        = 10 * time.Millisecond
	maxBackoff         = 500 * time.Millisecond
)

// Defaults for snapshots and the history kept in S3.
const (
	// DefaultSnapshotEvery: a snapshot once this many deltas follow the
	// last one, or once they add up to the database's size, whichever comes
	// first. A cold start then reads at most this many deltas.
	DefaultSnapshotEvery = 1000
	// DefaultHistory is how long deltas and snapshots are kept (backup --at).
	DefaultHistory = 7 * 24 * time.Hour
	// prefetch is how many deltas a catch-up fetches at once.
	prefetch = 32
)

// Metadata keys on snapshot objects.
const (
	metaSeq      = "caio-seq"
	metaChecksum = "caio-checksum"
	metaTime     = "caio-time"
)

// Options tune a store; zero values mean the defaults.
type Options struct {
	CacheDir      string        // "" for DefaultCacheDir
	History       time.Duration // DefaultHistory
	SnapshotEvery int           // DefaultSnapshotEvery
	Metrics       metrics.Sink  // commit outcomes and latency, database size; nil for none
	// Explain, when set, adds the caller's hint to errors meeting the
	// database (not found, not a database): only the caller knows whether
	// the path came from a flag or the environment.
	Explain func(error) error
}

// Store is a licensing.Store on an SQLite database in S3.
type Store struct {
	uri, key      string
	obj           objects
	cacheDir      string
	prefix        string // cache file names: <prefix>-<slot>
	maxAttempts   int
	snapshotEvery uint64
	history       time.Duration
	metrics       metrics.Sink
	explain       func(error) error

	mu      sync.Mutex // one operation at a time per process
	lock    *os.File   // the slot's flock, held while open
	path    string     // the working copy
	db      *sqlitestore.WorkingCopy
	loaded  bool // path holds state st
	st      slotMeta
	fp      fingerprint // of path after this process last changed it
	cookie  uint32      // schema cookie at the last schema check
	version int
	bytes   int64 // delta bytes uploaded or fetched since the last snapshot this process knows
	bg      sync.WaitGroup
	bgBusy  bool
}

var _ licensing.Store = (*Store)(nil)

// ParseURI splits s3://bucket/key.
func ParseURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || len(bucket) < 3 || len(bucket) > 63 || key == "" || strings.HasSuffix(key, "/") || strings.ContainsAny(bucket, " /\\") {
		return "", "", licensing.Errorf(licensing.CodeConfig, "%q is not an S3 database location: use s3://BUCKET/PATH/caio_licenses.db", uri)
	}
	return bucket, key, nil
}

// Open returns the store for uri, keeping its working copy in cacheDir
// ("" for DefaultCacheDir), which must be private to this user.
func Open(ctx context.Context, uri, cacheDir string) (*Store, error) {
	return OpenWith(ctx, uri, Options{CacheDir: cacheDir})
}

// OpenWith is Open with options. It checks configuration and credentials
// but does not require the database to exist (init-db creates it).
func OpenWith(ctx context.Context, uri string, opt Options) (*Store, error) {
	bucket, key, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	obj, err := newS3Objects(ctx, bucket)
	if err != nil {
		return nil, err
	}
	return newStore(uri, key, obj, opt)
}

func newStore(uri, key string, obj objects, opt Options) (*Store, error) {
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir()
	}
	if opt.History <= 0 {
		opt.History = DefaultHistory
	}
	if opt.SnapshotEvery <= 0 {
		opt.SnapshotEvery = DefaultSnapshotEvery
	}
	if err := prepareCacheDir(opt.CacheDir); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(uri))
	prefix := hex.EncodeToString(sum[:8])
	removeOldFormat(opt.CacheDir, prefix)
	lock, path, err := takeSlot(opt.CacheDir, prefix)
	if err != nil {
		return nil, err
	}
	return &Store{uri: uri, key: key, obj: obj, cacheDir: opt.CacheDir, prefix: prefix, maxAttempts: DefaultMaxAttempts,
		snapshotEvery: uint64(opt.SnapshotEvery), history: opt.History, lock: lock, path: path, metrics: metrics.OrNop(opt.Metrics), explain: opt.Explain}, nil
}

// Location is the database's URI.
func (s *Store) Location() string { return s.uri }

// Close waits for a snapshot in flight, records the working copy's state
// for the next process and releases it. (Only here: a process that dies
// leaves a record that no longer matches the file, and the next holder of
// the slot reads a snapshot instead.)
func (s *Store) Close() error {
	s.bg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeDB()
	if s.loaded {
		writeMeta(s.path, s.st)
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	return nil
}

func (s *Store) closeDB() {
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
}

func deltaKey(key string, seq uint64) string { return fmt.Sprintf("%s.log/%020d", key, seq) }
func historyKey(key string, seq uint64) string {
	return fmt.Sprintf("%s.snapshots/%020d.db", key, seq)
}

// trustFor is how long a working copy's state may go unconfirmed before it
// is dropped for a fresh snapshot: well inside the history window, so the
// deltas it lacks are never ones that maintain has removed.
func (s *Store) trustFor() time.Duration {
	return max(s.history-24*time.Hour, s.history/2)
}

func (s *Store) unavailable(err error) error {
	var le *licensing.Error
	if errors.As(err, &le) {
		return err
	}
	return licensing.Wrap(licensing.CodeBusy, err, "S3 is unavailable for %s: retry shortly", s.uri)
}

// sync brings the working copy up to date with S3 and opens it.
func (s *Store) sync(ctx context.Context) error { return s.syncWith(ctx, true) }

// syncWith opens the working copy, catching up with S3 unless remote is
// false and the copy is warm (an optimistic write: its put-if-absent fails
// if anything came after the state it ran on).
func (s *Store) syncWith(ctx context.Context, remote bool) error {
	err := s.syncCopy(ctx, remote)
	if err != nil && s.explain != nil {
		return s.explain(err)
	}
	return err
}

func (s *Store) syncCopy(ctx context.Context, remote bool) error {
	if s.loaded {
		// The copy is this process's; anything else that changed it (or a
		// state left unconfirmed too long) sends it back to a snapshot.
		fp, err := fingerprintOf(s.path)
		if err != nil || fp != s.fp || time.Since(s.st.At) > s.trustFor() {
			s.reset()
		}
	}
	if !s.loaded {
		if err := s.load(ctx); err != nil {
			return err
		}
		remote = true
	}
	if remote {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
	}
	return s.open(ctx)
}

// reset forgets the working copy.
func (s *Store) reset() {
	s.closeDB()
	s.loaded = false
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(s.path + suffix)
	}
	os.Remove(metaPath(s.path))
}

// load takes over the state a previous holder of the slot left, if it
// checks out, or else reads the newest snapshot.
func (s *Store) load(ctx context.Context) error {
	if m, err := readMeta(s.path); err == nil && m.URI == s.uri && time.Since(m.At) < s.trustFor() {
		os.Remove(s.path + "-wal") // an unpublished commit of a process that died
		if err := pagelog.Normalize(s.path); err == nil {
			if sum, err := pagelog.Checksum(s.path); err == nil && sum == m.Checksum {
				s.st, s.loaded = m, true
				return s.remember()
			}
		}
	}
	s.reset()
	return s.loadSnapshot(ctx)
}

// loadSnapshot downloads KEY into the working copy.
func (s *Store) loadSnapshot(ctx context.Context) error {
	seq, sum, etag, err := s.fetchSnapshot(ctx, s.key, s.path)
	if err != nil {
		return err
	}
	s.st = slotMeta{URI: s.uri, Seq: seq, Checksum: sum, At: time.Now(), BaseSeq: seq, BaseETag: etag}
	s.loaded, s.bytes, s.cookie = true, 0, 0
	return s.remember()
}

// fetchSnapshot downloads the snapshot at key to dest, streamed, and
// checks it: an SQLite file whose state checksum is the one its metadata
// records (a whole-object database from before the page log records
// none: sequence 0).
func (s *Store) fetchSnapshot(ctx context.Context, key, dest string) (seq, sum uint64, etag string, err error) {
	where := "s3://" + s.obj.bucketName() + "/" + key
	body, info, err := s.obj.get(ctx, key)
	switch {
	case errors.Is(err, errNoObject) && key == s.key:
		return 0, 0, "", licensing.Errorf(licensing.CodeDBNotFound, "database %s not found", s.uri)
	case err != nil:
		return 0, 0, "", s.unavailable(err)
	}
	defer body.Close()
	header := make([]byte, 16)
	if _, err := io.ReadFull(body, header); err != nil || string(header) != "SQLite format 3\x00" {
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return 0, 0, "", s.unavailable(err)
		}
		return 0, 0, "", wrongFile(nil, "%s is not a SQLite database (nothing was changed)", where)
	}
	if err := atomicfile.WriteFrom(dest, io.MultiReader(bytes.NewReader(header), body), 0o600); err != nil {
		if isChecksumMismatch(err) {
			return 0, 0, "", licensing.Wrap(licensing.CodeDBInvalid, err, "snapshot %s does not match the checksum S3 stored with it: it was damaged in storage (nothing was changed)", where)
		}
		return 0, 0, "", s.unavailable(err) // most likely the download broke off
	}
	if err := pagelog.Normalize(dest); err != nil {
		return 0, 0, "", wrongFile(err, "%s is not a whole SQLite database (nothing was changed)", where)
	}
	if sum, err = pagelog.Checksum(dest); err != nil {
		return 0, 0, "", wrongFile(err, "%s is not a whole SQLite database (nothing was changed)", where)
	}
	seq, recorded, err := snapshotMeta(info.meta)
	if err != nil {
		return 0, 0, "", licensing.Wrap(licensing.CodeDBInvalid, err, "snapshot %s has unreadable metadata: %v", where, err)
	}
	if recorded != nil && *recorded != sum {
		return 0, 0, "", licensing.Errorf(licensing.CodeDBInvalid, "snapshot %s does not match its recorded checksum: it was changed outside manage-licenses (nothing was changed)", where)
	}
	return seq, sum, info.etag, nil
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
func (s *Store) remember() error {
	fp, err := fingerprintOf(s.path)
	if err != nil {
		return err
	}
	s.fp = fp
	return nil
}

// catchUp applies the deltas after the working copy's sequence number:
// one at a time, then, once it is clearly behind, a batch at a time.
func (s *Store) catchUp(ctx context.Context) error {
	fetched := 0
	for {
		n := 1
		if fetched >= 2 {
			n = prefetch
		}
		ds, stop := s.fetchDeltas(ctx, s.st.Seq+1, n)
		if len(ds) > 0 {
			if err := s.apply(ds); err != nil {
				return err
			}
			fetched += len(ds)
		}
		switch {
		case errors.Is(stop, errNoObject):
			s.st.At = time.Now() // known current
			return nil
		case stop != nil:
			return stop
		}
	}
}

// fetchDeltas fetches n deltas from seq on, in parallel, and returns the
// run of them that exists with the error that ended it (errNoObject past
// the last).
func (s *Store) fetchDeltas(ctx context.Context, seq uint64, n int) ([]*pagelog.Delta, error) {
	if n == 1 { // the common case: current, or one behind
		d, err := s.fetchDelta(ctx, seq)
		if err != nil {
			return nil, err
		}
		return []*pagelog.Delta{d}, nil
	}
	ds := make([]*pagelog.Delta, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ds[i], errs[i] = s.fetchDelta(ctx, seq+uint64(i)) })
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
func (s *Store) fetchDelta(ctx context.Context, seq uint64) (*pagelog.Delta, error) {
	body, _, err := s.obj.get(ctx, deltaKey(s.key, seq))
	if errors.Is(err, errNoObject) {
		return nil, err
	}
	if err != nil {
		return nil, s.unavailable(err)
	}
	defer body.Close()
	raw, err := io.ReadAll(body)
	if isChecksumMismatch(err) {
		return nil, licensing.Wrap(licensing.CodeDBInvalid, err, "delta %d of %s does not match the checksum S3 stored with it: it was damaged in storage; nothing was applied from it; restore from a backup (backup --at) if no newer snapshot covers it", seq, s.uri)
	}
	if err != nil {
		return nil, s.unavailable(err)
	}
	d, err := pagelog.Decode(raw)
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeDBInvalid, err, "delta %d of %s is damaged (%v): nothing was applied from it; restore from a backup (backup --at) or contact support", seq, s.uri, err)
	}
	if d.Seq != seq {
		return nil, licensing.Errorf(licensing.CodeDBInvalid, "delta %d of %s says it is number %d: it was put there by something else; nothing was applied from it", seq, s.uri, d.Seq)
	}
	return &d, nil
}

// apply writes deltas, in order, to the closed working copy; each is
// checked against the state it holds first.
func (s *Store) apply(ds []*pagelog.Delta) error {
	s.closeDB()
	os.Remove(s.path + "-wal")
	defer s.remember()
	for _, d := range ds {
		if err := pagelog.Apply(s.path, s.st.Checksum, *d); err != nil {
			return licensing.Wrap(licensing.CodeDBInvalid, err,
				"delta %d of %s does not apply to the state before it (%v): it is damaged or foreign; nothing was applied from it", d.Seq, s.uri, err)
		}
		s.st.Seq, s.st.Checksum = d.Seq, d.Post
		s.bytes += int64(d.Size)
	}
	return nil
}

// open opens the working copy, checking its schema when it changed.
func (s *Store) open(ctx context.Context) error {
	if s.db != nil {
		return nil
	}
	cookie, err := pagelog.SchemaCookie(s.path)
	if err != nil {
		return wrongFile(err, "%s is not a CAIO license database (nothing was changed)", s.uri)
	}
	db, err := sqlitestore.OpenWorkingCopy(ctx, s.path, cookie == s.cookie && s.cookie != 0)
	if err != nil {
		s.reset() // fetched again next time
		return s.explainOpen(err)
	}
	if s.version, err = db.Version(ctx); err != nil {
		db.Close()
		return s.explainOpen(err)
	}
	s.db, s.cookie = db, cookie
	return nil
}

// wrongFile is a DB_INVALID error saying the path names something other
// than a CAIO license database (the caller adds how to fix the path).
func wrongFile(err error, format string, args ...any) error {
	return licensing.Wrap(licensing.CodeDBInvalid, errors.Join(sqlitestore.ErrWrongFile, err), format, args...)
}

// explainOpen names the S3 object, not the working copy, in open errors.
func (s *Store) explainOpen(err error) error {
	switch licensing.ErrorCode(err) {
	case licensing.CodeDBOutdated:
		return licensing.Wrap(licensing.CodeDBOutdated, err, "database %s has an older schema: run 'manage-licenses init-db' to migrate it", s.uri)
	case licensing.CodeDBInvalid:
		var tampered *sqlitestore.TamperedError
		if errors.As(err, &tampered) {
			return licensing.Wrap(licensing.CodeDBInvalid, err, "%s (nothing was changed)", tampered.Describe(s.uri))
		}
		return wrongFile(err, "%s is not a CAIO license database (nothing was changed)", s.uri)
	}
	return err
}

// current checks the schema version for ordinary operations.
func (s *Store) current() error {
	switch {
	case s.version < sqlitestore.SchemaVersion:
		return licensing.Errorf(licensing.CodeDBOutdated, "database %s has schema version %d, older than this build's %d: run 'manage-licenses init-db' to migrate it", s.uri, s.version, sqlitestore.SchemaVersion)
	case s.version > sqlitestore.SchemaVersion:
		return licensing.Errorf(licensing.CodeDBOutdated, "database %s has schema version %d, newer than this build knows (%d): upgrade manage-licenses", s.uri, s.version, sqlitestore.SchemaVersion)
	}
	return nil
}

// View runs fn on the current state.
func (s *Store) View(ctx context.Context, fn func(licensing.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return err
	}
	if err := s.current(); err != nil {
		return err
	}
	return s.db.View(ctx, fn)
}

// Update runs fn as one unit of work and publishes it; see the package
// comment for the protocol.
func (s *Store) Update(ctx context.Context, fn func(licensing.Tx) error) error {
	return s.update(ctx, true, func(st *sqlitestore.WorkingCopy, opID string) (bool, error) {
		return st.UpdateOperation(ctx, opID, time.Now().UTC(), fn)
	})
}

// Migrate brings the schema up to date, creating the database if it does
// not exist and leaving an up-to-date one untouched. It returns the
// version found.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	s.mu.Lock()
	err := s.sync(ctx)
	s.mu.Unlock()
	if licensing.ErrorCode(err) == licensing.CodeDBNotFound {
		created, err := s.create(ctx)
		if err != nil || created {
			return 0, err
		}
	} else if err != nil {
		return 0, err
	}
	from := 0
	err = s.update(ctx, false, func(st *sqlitestore.WorkingCopy, opID string) (bool, error) {
		var err error
		from, err = st.Migrate(ctx)
		return from != sqlitestore.SchemaVersion, err
	})
	return from, err
}

// create publishes a new, empty database as the snapshot at sequence 0,
// if none exists.
func (s *Store) create(ctx context.Context) (bool, error) {
	tmp, err := os.MkdirTemp(s.cacheDir, ".new-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "new.db")
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true, Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		return false, err
	}
	st.Close()
	if err := pagelog.Normalize(path); err != nil {
		return false, err
	}
	sum, err := pagelog.Checksum(path)
	if err != nil {
		return false, err
	}
	if _, err := s.putFile(ctx, path, s.key, "", 0, sum, time.Now()); err != nil {
		if errors.Is(err, errCondition) {
			return false, nil // created meanwhile by someone else: migrate that one
		}
		return false, s.unavailable(err)
	}
	return true, nil
}

// putFile uploads a file as a snapshot object, streamed.
func (s *Store) putFile(ctx context.Context, path, key, ifMatch string, seq, sum uint64, at time.Time) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	return s.obj.put(ctx, key, f, info.Size(), ifMatch, map[string]string{
		metaSeq: strconv.FormatUint(seq, 10), metaChecksum: strconv.FormatUint(sum, 16), metaTime: at.UTC().Format(time.RFC3339Nano)})
}

// unknownOutcome wraps a PUT error after which the write may have landed.
type unknownOutcome struct{ error }

func (u unknownOutcome) Unwrap() error { return u.error }

func isUnknownOutcome(err error) bool {
	var u unknownOutcome
	return errors.As(err, &u)
}

// update runs an operation and commits its pages as the next delta,
// retrying on conflicts; checkVersion refuses an outdated schema
// (everything but Migrate).
func (s *Store) update(ctx context.Context, checkVersion bool, run func(*sqlitestore.WorkingCopy, string) (bool, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opID := randomID()
	maybeApplied := false // an earlier attempt's PUT has an unknown outcome
	var lastErr error
	start := time.Now()
	for attempt := 1; attempt <= s.maxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, attempt); err != nil {
				return err
			}
		}
		// The first attempt runs on the state at hand: a write's commit
		// checks that nothing came after it, and a refusal or a no-op is
		// checked below before it is believed.
		optimistic := attempt == 1
		if err := s.syncWith(ctx, !optimistic); err != nil {
			if licensing.ErrorCode(err) == licensing.CodeBusy {
				lastErr = err
				continue // transient: S3 unreachable or 5xx
			}
			return err
		}
		// After any failed attempt, our write may have landed: an unknown
		// outcome, or an SDK-level retry of a PUT that had already been
		// applied (which then fails its own condition).
		if attempt > 1 {
			landed, err := s.db.HasOperation(ctx, opID)
			if err != nil {
				return err
			}
			if landed {
				return nil
			}
		}
		if checkVersion {
			if err := s.current(); err != nil {
				return err
			}
		}
		seq := s.st.Seq
		err := s.attempt(ctx, opID, run, optimistic)
		switch {
		case err == nil:
			if s.st.Seq != seq {
				s.metrics.Count(metrics.S3Commits, 1, "outcome", "committed")
				s.metrics.Observe(metrics.S3CommitLatency, float64(time.Since(start).Microseconds())/1000)
				s.metrics.Gauge(metrics.DatabaseBytes, float64(s.fp.size)) // as attempt just recorded it
			}
			return nil
		case errors.Is(err, errCondition):
			s.metrics.Count(metrics.S3Commits, 1, "outcome", "conflict")
			lastErr = err
		case isUnknownOutcome(err):
			s.metrics.Count(metrics.S3Commits, 1, "outcome", "unknown")
			maybeApplied, lastErr = true, err
		default:
			return err
		}
	}
	s.metrics.Count(metrics.S3CommitRetriesExhausted, 1)
	if maybeApplied {
		return licensing.Wrap(licensing.CodeUnknownOutcome, lastErr,
			"S3 did not confirm the write to %s after %d attempts: it may or may not have been applied; check (for example with list-events) before repeating it", s.uri, s.maxAttempts)
	}
	return licensing.Wrap(licensing.CodeBusy, lastErr, "database %s stayed busy through %d attempts: retry shortly", s.uri, s.maxAttempts)
}

// attempt runs the operation on the working copy and publishes its pages.
// An optimistic attempt that wrote nothing (a refusal, a no-op) stands only
// if the state it ran on is still current; else errCondition re-runs it.
func (s *Store) attempt(ctx context.Context, opID string, run func(*sqlitestore.WorkingCopy, string) (bool, error), optimistic bool) error {
	changed, err := run(s.db, opID)
	if err != nil || !changed {
		// Nothing committed, as a rule; should a commit be there, it must
		// not reach the next write's delta.
		if _, pages, _, werr := pagelog.ReadWAL(s.path + "-wal"); werr != nil || len(pages) > 0 {
			s.discard()
		}
		if optimistic {
			seq := s.st.Seq
			if cerr := s.catchUp(ctx); cerr != nil {
				return cerr
			}
			if s.st.Seq != seq {
				return errCondition
			}
		}
		return err
	}
	pageSize, pages, size, err := pagelog.ReadWAL(s.path + "-wal")
	if err == nil && len(pages) == 0 {
		err = errors.New("the commit left no pages in the WAL")
	}
	if err != nil {
		s.discard()
		return licensing.Wrap(licensing.CodeInternal, err, "cannot read the pages of the write to %s", s.uri)
	}
	f, err := os.Open(s.path)
	if err != nil {
		s.discard()
		return err
	}
	post, err := pagelog.Post(f, pageSize, s.st.Checksum, pages, size)
	f.Close()
	if err != nil {
		s.discard()
		return licensing.Wrap(licensing.CodeInternal, err, "cannot compute the write to %s", s.uri)
	}
	now := time.Now().UTC()
	d := pagelog.Delta{Seq: s.st.Seq + 1, PageSize: pageSize, Pages: size, Pre: s.st.Checksum, Post: post, OpID: opID, Time: now, Changed: pages}
	if err := s.publish(ctx, &d); err != nil {
		s.discard()
		return err
	}
	// Published: the WAL's pages become the main file's.
	if err := s.db.Checkpoint(ctx); err != nil {
		s.reset() // published; the next operation fetches it again
		return nil
	}
	s.st.Seq, s.st.Checksum, s.st.At = d.Seq, post, now
	s.bytes += int64(d.Size)
	s.remember()
	s.maybeSnapshot()
	return nil
}

// publish creates the delta's object: put-if-absent on its number.
func (s *Store) publish(ctx context.Context, d *pagelog.Delta) error {
	enc, err := pagelog.Encode(*d)
	if err != nil {
		return err
	}
	d.Size = len(enc)
	_, err = s.obj.put(ctx, deltaKey(s.key, d.Seq), bytes.NewReader(enc), int64(len(enc)), "", nil)
	if err != nil {
		var le *licensing.Error
		if errors.Is(err, errCondition) || errors.As(err, &le) {
			return err
		}
		return unknownOutcome{err}
	}
	if d.Seq == 1 && s.st.BaseSeq == 0 {
		// The first delta after a whole-object database: keep that
		// object as the history's first snapshot (best effort).
		s.obj.copy(ctx, s.key, s.st.BaseETag, historyKey(s.key, 0))
	}
	return nil
}

// discard drops an unpublished commit: the main file still holds the
// state before it.
func (s *Store) discard() {
	if s.db != nil {
		s.db.Discard()
		s.db = nil
	}
}

// maybeSnapshot publishes the working copy as the snapshot, in the
// background, when enough deltas follow the last one.
func (s *Store) maybeSnapshot() {
	if s.bgBusy {
		return
	}
	info, err := os.Stat(s.path)
	if err != nil {
		return
	}
	if s.st.Seq-s.st.BaseSeq < s.snapshotEvery && s.bytes < info.Size() {
		return
	}
	// A private copy: the working copy moves on while this uploads.
	tmp, err := os.CreateTemp(s.cacheDir, ".snapshot-*.db")
	if err != nil {
		return
	}
	tmp.Close()
	src, err := os.Open(s.path)
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	err = atomicfile.WriteFrom(tmp.Name(), src, 0o600)
	src.Close()
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	st := s.st
	s.bgBusy = true
	s.bg.Go(func() {
		defer os.Remove(tmp.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		baseSeq, baseETag, ok := s.snapshot(ctx, tmp.Name(), st)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.bgBusy = false
		if ok && baseSeq >= s.st.BaseSeq {
			s.st.BaseSeq, s.st.BaseETag = baseSeq, baseETag
			if baseSeq == st.Seq {
				s.bytes = 0
			}
		}
	})
}

// snapshot uploads path (state st) as KEY, If-Match the snapshot st knew,
// and copies it into the history. It reports the newest snapshot it saw.
func (s *Store) snapshot(ctx context.Context, path string, st slotMeta) (uint64, string, bool) {
	etag, err := s.putFile(ctx, path, s.key, st.BaseETag, st.Seq, st.Checksum, st.At)
	if errors.Is(err, errCondition) {
		// Another process published a snapshot meanwhile: keep the newer.
		info, err := s.obj.head(ctx, s.key)
		if err != nil {
			return 0, "", false
		}
		seq, _, err := snapshotMeta(info.meta)
		if err != nil {
			return 0, "", false
		}
		if seq >= st.Seq {
			return seq, info.etag, true
		}
		if etag, err = s.putFile(ctx, path, s.key, info.etag, st.Seq, st.Checksum, st.At); err != nil {
			return 0, "", false
		}
	} else if err != nil {
		return 0, "", false
	}
	s.obj.copy(ctx, s.key, etag, historyKey(s.key, st.Seq))
	return st.Seq, etag, true
}

// Backup writes a consistent copy of the current state to dest.
func (s *Store) Backup(ctx context.Context, dest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return err
	}
	return s.db.Backup(ctx, dest)
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

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
