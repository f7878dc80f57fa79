// Package s3log keeps one SQLite file in S3 as a log of page deltas with
// snapshots, safe under concurrent writers. It knows SQLite files, pages
// and S3 objects, and nothing of what the database holds: the caller opens
// the working copy (WorkingCopy) and runs its operations on it.
//
// Objects, for a database at s3://bucket/KEY:
//
//	KEY                         the newest snapshot: a whole SQLite file,
//	                            with its sequence number and state checksum
//	                            in metadata (caio-seq, caio-checksum)
//	KEY.log/<seq, 20 digits>    one delta per committed write: the pages it
//	                            changed (package pagelog)
//	KEY.log.merged/<first>-<last>
//	                            16, 256 or 4,096 consecutive deltas merged
//	                            into one (merged.go): what a cold start reads
//	                            instead of the deltas they merge
//	KEY.snapshots/<seq>.db      earlier snapshots, for points in time
//
// A write runs the whole operation in a transaction on this process's
// working copy (at sequence n, WAL mode, no automatic checkpoint), reads
// the pages it changed from the WAL and commits by creating KEY.log/<n+1>
// with put-if-absent: exactly one writer wins each number. The winner
// checkpoints; a loser drops its WAL, catches up (fetches the deltas it
// lacks and applies them, each checked against the state it holds) and
// re-runs the whole operation, the caller's checks included. Success is
// reported only after S3 accepted the delta.
//
// A reader catches up the same way: one listing of KEY.log/ after its
// number says which deltas exist (a process that is current spends that
// one request), and it fetches them, many at once, applying each as it
// arrives. A cold process reads KEY, then lists the deltas after it and
// the merged deltas at once, then fetches at once the fewest objects that
// reach the log's end (merged deltas, then the newest deltas) and its
// snapshot's own delta, which checks the snapshot: three round trips and
// some 50 requests, whatever the number of deltas since the snapshot. A
// merged delta is checked like a delta, and the deltas stay the truth: one
// that fails sends the reader back to its snapshot and the deltas alone. The listing also shows what a 404 could not: a
// delta missing while later ones exist is a gap, never an end; nothing
// past it is applied, and nothing is written on it. Each process
// remembers the newest state it confirmed (and the processes of a cache
// directory share it), and refuses a log that would take it back: a
// deleted tail, a snapshot relabelled. Repair moves the log past damage. Every so many deltas a writer publishes its copy
// as KEY (If-Match the snapshot it knew) in the background of its write;
// a failed snapshot never fails the write. Under SnapshotOnRequest writes
// never publish: a process that holds the right to calls PublishSnapshot
// (the Lambda functions' scheduled publisher), and the others need no
// write right on KEY nor KEY.snapshots/.
//
// Every write records a random operation id in the database (the caller's
// run does, with the id it is given). When a PUT's outcome is unknown (a
// dropped connection, a 5xx after the server may have applied it), the
// next attempt catches up and looks for that id: found, the write landed
// and is reported as done; not found, it is re-run.
//
// A database that is one whole object at KEY, as earlier builds wrote it,
// is the snapshot at sequence 0: it is adopted with no step, and stays
// readable as it was.
package s3log

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
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
	// DefaultHistory is how long deltas and snapshots are kept (points in
	// time).
	DefaultHistory = 7 * 24 * time.Hour
)

// Metadata keys on snapshot objects.
const (
	metaSeq      = "caio-seq"
	metaChecksum = "caio-checksum"
	metaTime     = "caio-time"
)

// WorkingCopy is what the log needs of the caller's connection to the
// working copy, opened by Config.Open in the page-log discipline: WAL mode,
// no automatic checkpoint, and no checkpoint on close, so that after a
// commit the WAL holds exactly the pages it changed.
type WorkingCopy interface {
	// HasOperation reports whether the write with this operation id is
	// in the state.
	HasOperation(ctx context.Context, id string) (bool, error)
	// Checkpoint moves the committed pages from the WAL into the main
	// file: the commit was published.
	Checkpoint(ctx context.Context) error
	// Discard closes without checkpointing and removes the WAL: the main
	// file is left as of the last checkpoint.
	Discard() error
	// SchemaDigest identifies the schema's objects and their SQL: when it
	// moved while the schema cookie did not, the schema is checked again.
	SchemaDigest(ctx context.Context) (string, error)
	Close() error
}

// Config is what a Log is given; zero values mean the defaults.
type Config[C WorkingCopy] struct {
	// Open opens the working copy at path. With schemaChecked the caller
	// may skip checking the schema: the log opened this file before and
	// its schema cookie has not moved since.
	Open func(ctx context.Context, path string, schemaChecked bool) (C, error)
	// CacheDir holds the working copies; it must be private to this user
	// (it is created 0700, and refused when others can write to it or
	// could have planted a link in it or on the way to it: see cache.go).
	CacheDir      string
	History       time.Duration // DefaultHistory
	SnapshotEvery int           // DefaultSnapshotEvery
	Metrics       metrics.Sink  // commit outcomes and latency, database size; nil for none
	// Snapshots says who publishes the snapshot: writers, in the
	// background of their writes (the default), or PublishSnapshot only.
	Snapshots SnapshotPolicy
}

// Log is one database in S3, with this process's working copy of it. Its
// methods are safe for concurrent use, and run one at a time.
type Log[C WorkingCopy] struct {
	uri, key      string
	obj           Objects
	openCopy      func(ctx context.Context, path string, schemaChecked bool) (C, error)
	cache         *cacheDir
	cacheDir      string // cache.path, for temporary files
	maxAttempts   int
	snapshotEvery uint64
	snapshots     SnapshotPolicy
	history       time.Duration
	metrics       metrics.Sink

	mu     sync.Mutex // one operation at a time per process
	lock   *os.File   // the slot's flock, held while open
	path   string     // the working copy
	db     C          // open when isOpen
	isOpen bool
	loaded bool // path holds state st
	st     slotMeta
	fp     fingerprint // of path after this process last changed it
	cookie uint32      // schema cookie at the last schema check
	schema string      // schema digest at the last schema check
	bytes  int64       // delta bytes uploaded or fetched since the last snapshot this process knows
	bg     sync.WaitGroup
	bgBusy bool
	// mergeBusy: a merge runs in the background (merge.go); mergeQueue
	// the spans' last deltas waiting for it.
	mergeBusy  bool
	mergeQueue []mergeJob
	recent     []pagelog.Delta    // the deltas of the current level-1 span this process holds (keepRecent)
	distrusted map[[2]uint64]bool // merged deltas that failed here: passed over (catchUpOnce)

	verifyBase    bool           // a snapshot was just loaded: check it against its delta
	unsure        bool           // the last catch-up failed: the next operation catches up first
	confirmed     confirmedState // the newest state this machine confirmed (confirmed.go)
	confirmedPath string
}

// New returns the log of the database at key in obj's bucket, and takes a
// working copy slot in cfg.CacheDir. It sends no request: the database
// need not exist (Create makes it).
func New[C WorkingCopy](obj Objects, key string, cfg Config[C]) (*Log[C], error) {
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	cache, err := openCacheDir(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	uri := "s3://" + obj.Bucket() + "/" + key
	sum := sha256.Sum256([]byte(uri))
	prefix := hex.EncodeToString(sum[:8]) // cache file names: <prefix>-<slot>
	removeOldFormat(cache.path, prefix)
	lock, path, err := takeSlot(cache, prefix)
	if err != nil {
		cache.close()
		return nil, err
	}
	confirmedPath := filepath.Join(cache.path, prefix+".confirmed")
	l := &Log[C]{uri: uri, key: key, obj: obj, openCopy: cfg.Open, cache: cache, cacheDir: cache.path, maxAttempts: DefaultMaxAttempts,
		snapshotEvery: uint64(cfg.SnapshotEvery), snapshots: cfg.Snapshots, history: cfg.History, lock: lock, path: path,
		metrics: metrics.OrNop(cfg.Metrics), confirmed: readConfirmed(confirmedPath), confirmedPath: confirmedPath}
	if err := l.checkSlot(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// URI is the database's location, s3://bucket/key.
func (l *Log[C]) URI() string { return l.uri }

// Key is the database's key in its bucket.
func (l *Log[C]) Key() string { return l.key }

// History is how long deltas and snapshots are kept.
func (l *Log[C]) History() time.Duration { return l.history }

// Close waits for a snapshot in flight, records the working copy's state
// for the next process and releases it. (Only here: a process that dies
// leaves a record that no longer matches the file, and the next holder of
// the slot reads a snapshot instead.)
func (l *Log[C]) Close() error {
	l.bg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeCopy()
	if l.loaded {
		writeMeta(l.path, l.st)
	}
	writeConfirmed(l.confirmedPath, l.confirmed)
	if l.lock != nil {
		l.lock.Close() // releases the flock
		l.lock = nil
	}
	l.cache.close()
	return nil
}

func (l *Log[C]) closeCopy() {
	if l.isOpen {
		l.db.Close()
		l.forgetCopy()
	}
}

func (l *Log[C]) forgetCopy() {
	var none C
	l.db, l.isOpen = none, false
}

func deltaKey(key string, seq uint64) string { return fmt.Sprintf("%s.log/%020d", key, seq) }
func historyKey(key string, seq uint64) string {
	return fmt.Sprintf("%s.snapshots/%020d.db", key, seq)
}

// trustFor is how long a working copy's state may go unconfirmed before it
// is dropped for a fresh snapshot: well inside the history window, so the
// deltas it lacks are never ones that pruning has removed.
func (l *Log[C]) trustFor() time.Duration {
	return max(l.history-24*time.Hour, l.history/2)
}

// View brings the working copy up to date with S3 and runs fn on it.
// fn's errors are returned as they are; the log's own are wrapped in a
// SyncError.
func (l *Log[C]) View(ctx context.Context, fn func(C) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.sync(ctx, true); err != nil {
		return &SyncError{err}
	}
	return fn(l.db)
}

// Sync brings the working copy up to date with S3 and opens it.
func (l *Log[C]) Sync(ctx context.Context) error {
	return l.View(ctx, func(C) error { return nil })
}

// Size is the size of the current state.
func (l *Log[C]) Size(ctx context.Context) (int64, error) {
	var size int64
	err := l.View(ctx, func(C) error {
		fp, err := l.fingerprint()
		size = fp.size
		return err
	})
	return size, err
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
