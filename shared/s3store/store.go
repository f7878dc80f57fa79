// Package s3store is the licensing database in S3: a licensing.Store on
// the S3 log of package s3log, whose working copy is a
// sqlitestore.WorkingCopy. It adds what the log does not know: the
// licensing schema and its version, operation ids in licensing writes,
// and the codes and hints of the errors users see.
package s3store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3log"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Defaults, as the S3 log has them.
const (
	DefaultMaxAttempts   = s3log.DefaultMaxAttempts
	DefaultSnapshotEvery = s3log.DefaultSnapshotEvery
	// DefaultHistory is how long deltas and snapshots are kept (backup --at).
	DefaultHistory = s3log.DefaultHistory
)

// Who publishes the snapshot (Options.Snapshots); see s3log.
type SnapshotPolicy = s3log.SnapshotPolicy

// Snapshot policies.
const (
	// SnapshotAfterWrites: writers publish in the background of their
	// writes (the default: the CLI, serve).
	SnapshotAfterWrites = s3log.SnapshotAfterWrites
	// SnapshotOnRequest: writes only create deltas; PublishSnapshot
	// publishes (the Lambda functions: a scheduled one publishes, the
	// internet-facing one never does and holds no right to).
	SnapshotOnRequest = s3log.SnapshotOnRequest
)

// SnapshotReport says what PublishSnapshot found and did.
type SnapshotReport = s3log.SnapshotReport

// Options tune a store; zero values mean the defaults.
type Options struct {
	CacheDir      string        // "" for DefaultCacheDir
	History       time.Duration // DefaultHistory
	SnapshotEvery int           // DefaultSnapshotEvery
	Metrics       metrics.Sink  // commit outcomes and latency, database size; nil for none
	// Snapshots says who publishes the snapshot (SnapshotAfterWrites).
	Snapshots SnapshotPolicy
	// HistoryByLifecycle: the bucket's lifecycle rules expire deltas and
	// snapshots past History (the SAM template's do), so PruneHistory
	// removes nothing and the process needs no right to delete. Without
	// it, PruneHistory removes what is past the window itself (maintain,
	// for an S3-compatible store without such rules).
	HistoryByLifecycle bool
	// Explain, when set, adds the caller's hint to errors meeting the
	// database (not found, not a database): only the caller knows whether
	// the path came from a flag or the environment.
	Explain func(error) error
}

// PruneReport says what PruneHistory removed.
type PruneReport struct {
	s3log.PruneReport
	// LeftToLifecycle: nothing was removed here; the bucket's lifecycle
	// rules expire history past the window (Options.HistoryByLifecycle).
	LeftToLifecycle bool `json:"left_to_lifecycle,omitempty"`
}

// RepairReport says what Repair found and did (see s3log.Log.Repair).
type RepairReport = s3log.RepairReport

// Store is a licensing.Store on an SQLite database in S3.
type Store struct {
	uri       string
	obj       s3log.Objects // the bucket, for the archive and reports beside the database
	log       *s3log.Log[*workingCopy]
	explain   func(error) error
	lifecycle bool // history past the window is the bucket's lifecycle rules' to expire
}

var _ licensing.Store = (*Store)(nil)

// workingCopy is the log's working copy with the schema version read when
// it was opened (every operation but init-db's checks it).
type workingCopy struct {
	*sqlitestore.WorkingCopy
	version int
}

// DefaultCacheDir is the per-user cache directory: the OS user cache
// directory (XDG_CACHE_HOME, else ~/.cache), or, where there is no home (a
// Lambda function), a directory per user id in the temp dir. That name is
// one another user can take first: the log then refuses it (a link, or a
// directory not this user's own and private) rather than use it, and the
// refusal says to set CAIO_LICENSE_CACHE_DIR.
func DefaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "caio-licensing")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("caio-licensing-%d", os.Getuid()))
}

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
	s := &Store{uri: uri, explain: opt.Explain, lifecycle: opt.HistoryByLifecycle}
	if s.obj, err = s3log.DialS3(ctx, bucket); err != nil {
		return nil, s.fail(err, duringUse)
	}
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir()
	}
	s.log, err = s3log.New(s.obj, key, s3log.Config[*workingCopy]{Open: s.openCopy, CacheDir: opt.CacheDir,
		History: opt.History, SnapshotEvery: opt.SnapshotEvery, Metrics: opt.Metrics, Snapshots: opt.Snapshots})
	if err != nil {
		return nil, s.fail(err, duringUse)
	}
	return s, nil
}

// openCopy opens the log's working copy as a licensing database: the
// schema checked (unless the log knows it unchanged) but not its version,
// which init-db migrates.
func (s *Store) openCopy(ctx context.Context, path string, schemaChecked bool) (*workingCopy, error) {
	db, err := sqlitestore.OpenWorkingCopy(ctx, path, schemaChecked)
	if err != nil {
		return nil, s.copyError(err)
	}
	version, err := db.Version(ctx)
	if err != nil {
		db.Close()
		return nil, s.copyError(err)
	}
	return &workingCopy{db, version}, nil
}

// Location is the database's URI.
func (s *Store) Location() string { return s.uri }

// Close waits for a snapshot in flight and releases the working copy for
// the next process.
func (s *Store) Close() error { return s.log.Close() }

// current checks the schema version for ordinary operations.
func (s *Store) current(db *workingCopy) error {
	switch {
	case db.version < sqlitestore.SchemaVersion:
		return licensing.Errorf(licensing.CodeDBOutdated, "database %s has schema version %d, older than this build's %d: run 'manage-licenses init-db' to migrate it", s.uri, db.version, sqlitestore.SchemaVersion)
	case db.version > sqlitestore.SchemaVersion:
		return licensing.Errorf(licensing.CodeDBOutdated, "database %s has schema version %d, newer than this build knows (%d): upgrade manage-licenses", s.uri, db.version, sqlitestore.SchemaVersion)
	}
	return nil
}

// View runs fn on the current state.
func (s *Store) View(ctx context.Context, fn func(licensing.Tx) error) error {
	return s.fail(s.log.View(ctx, func(db *workingCopy) error {
		if err := s.current(db); err != nil {
			return err
		}
		return db.View(ctx, fn)
	}), duringUse)
}

// Update runs fn as one unit of work and publishes it; see package s3log
// for the protocol.
func (s *Store) Update(ctx context.Context, fn func(licensing.Tx) error) error {
	return s.update(ctx, true, func(db *workingCopy, opID string) (bool, error) {
		return db.UpdateOperation(ctx, opID, time.Now().UTC(), fn)
	})
}

// maxWrite bounds one write, its retries included. A writer whose PUT's
// answer was lost looks for its operation id in the state it catches up
// to; the database keeps ids for sqlitestore.OperationWindow, so a write
// must end well before that, or it could miss its own id and apply twice.
const maxWrite = 20 * time.Minute

// A write ends within a third of the window (this fails to compile if not).
const _ = uint(sqlitestore.OperationWindow - 3*maxWrite)

// update commits run through the log; checkVersion refuses an outdated
// schema (everything but Migrate).
func (s *Store) update(ctx context.Context, checkVersion bool, run func(db *workingCopy, opID string) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, maxWrite)
	defer cancel()
	var check func(*workingCopy) error
	if checkVersion {
		check = s.current
	}
	return s.fail(s.log.Update(ctx, check, run), duringUse)
}

// Migrate brings the schema up to date, creating the database if it does
// not exist and leaving an up-to-date one untouched. It returns the
// version found.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	err := s.fail(s.log.Sync(ctx), duringUse)
	if licensing.ErrorCode(err) == licensing.CodeDBNotFound {
		created, err := s.log.Create(ctx, func(path string) error {
			st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true, Mode: sqlitestore.ModeSnapshot})
			if err != nil {
				return err
			}
			st.Close()
			return nil
		})
		if err != nil || created {
			return 0, s.fail(err, duringUse)
		}
		// Created meanwhile by someone else: migrate that one.
	} else if err != nil {
		return 0, err
	}
	from := 0
	err = s.update(ctx, false, func(db *workingCopy, opID string) (bool, error) {
		var err error
		from, err = db.Migrate(ctx)
		return from != sqlitestore.SchemaVersion, err
	})
	return from, err
}

// Backup writes a consistent copy of the current state to dest.
func (s *Store) Backup(ctx context.Context, dest string) error {
	return s.fail(s.log.View(ctx, func(db *workingCopy) error { return db.Backup(ctx, dest) }), duringUse)
}

// BackupAt writes the database as it was at time at to dest: the newest
// history snapshot published by then, and the deltas after it committed
// by then.
func (s *Store) BackupAt(ctx context.Context, at time.Time, dest string) error {
	err := s.log.RebuildAt(ctx, at, func(path string) error {
		st, err := sqlitestore.OpenWorkingCopy(ctx, path, false)
		if err != nil {
			return s.explainOpen(err, absPath(path))
		}
		defer st.Close()
		return st.Backup(ctx, dest)
	})
	return s.fail(err, duringPointInTime)
}

// Repair moves the log past damage that stops its readers, publishing the
// newest sound state this process reaches (see s3log.Log.Repair). It needs
// the bucket, not the signing secret: it moves pages, not licenses.
func (s *Store) Repair(ctx context.Context) (RepairReport, error) {
	rep, err := s.log.Repair(ctx)
	return rep, s.fail(err, duringUse)
}

// Restore publishes the database file src, once checked to be a current
// CAIO license database, as the next state: one delta holding every page,
// after the log's end, and the snapshot there. The state it replaces is
// never opened, so one that fails its own checks (a planted trigger) can
// be restored over.
func (s *Store) Restore(ctx context.Context, src string) error {
	if err := sqlitestore.CheckRestorable(ctx, src); err != nil {
		return err
	}
	return s.fail(s.log.Replace(ctx, src), duringUse)
}

// PruneHistory removes deltas and snapshots older than the history window
// that no one can need (see s3log.Log.PruneHistory), unless the bucket's
// lifecycle rules expire them (Options.HistoryByLifecycle): then it sends
// no request.
func (s *Store) PruneHistory(ctx context.Context) (PruneReport, error) {
	if s.lifecycle {
		return PruneReport{LeftToLifecycle: true}, nil
	}
	rep, err := s.log.PruneHistory(ctx)
	return PruneReport{PruneReport: rep}, s.fail(err, duringPrune)
}

// PublishSnapshot publishes the current state as the snapshot when one is
// due (see s3log.Log.PublishSnapshot): what a store under
// SnapshotOnRequest relies on to keep cold starts bounded.
func (s *Store) PublishSnapshot(ctx context.Context) (SnapshotReport, error) {
	rep, err := s.log.PublishSnapshot(ctx)
	return rep, s.fail(err, duringUse)
}

// Size is the size of the current state.
func (s *Store) Size(ctx context.Context) (int64, error) {
	size, err := s.log.Size(ctx)
	return size, s.fail(err, duringUse)
}

// FreeBytes is the space of the current state's free pages.
func (s *Store) FreeBytes(ctx context.Context) (int64, error) {
	var free int64
	err := s.log.View(ctx, func(db *workingCopy) error {
		var err error
		free, err = db.FreeBytes(ctx)
		return err
	})
	return free, s.fail(err, duringUse)
}

// Vacuum publishes a compacted state through the usual commit.
func (s *Store) Vacuum(ctx context.Context) error {
	return s.update(ctx, true, func(db *workingCopy, opID string) (bool, error) {
		if err := db.Vacuum(ctx); err != nil {
			return false, err
		}
		now := time.Now().UTC()
		return db.UpdateOperation(ctx, opID, now, func(tx licensing.Tx) error {
			return tx.PutSetting("last_vacuum", []byte(now.Format(time.RFC3339)))
		})
	})
}

func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
