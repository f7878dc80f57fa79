// Package sqlitestore keeps the licensing data in one SQLite file, through
// the pure-Go github.com/ncruces/go-sqlite3 driver.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Store is a licensing.Store on a local SQLite file.
type Store struct {
	db    *sql.DB
	path  string
	mode  Mode
	stmts *stmtCache
	raw   *rawStmts // ModeShared: write transactions run the seat operations' statements directly (raw.go)
}

var _ licensing.Store = (*Store)(nil)

// Options control Open.
type Options struct {
	// Create creates a missing file (and its directory) with the current schema.
	Create bool
	// SkipSchemaCheck opens a database whatever its schema version; init-db
	// uses it to migrate older databases forward.
	SkipSchemaCheck bool
	// Mode says who else uses the file and where its durability comes
	// from; the zero value is ModeShared.
	Mode Mode
}

// Mode is how a database file is opened. One setting, not a flag per
// journal mode: the combinations that make sense are exactly these.
type Mode int

const (
	// ModeShared is a database file that processes on this machine share:
	// WAL mode, every commit durable (synchronous=FULL) before it returns.
	ModeShared Mode = iota
	// ModeSnapshot is a private copy whose durability comes from
	// elsewhere (a file about to be published whole): a rollback journal
	// instead of WAL, so that after a commit the file alone is the
	// complete database, and one connection.
	ModeSnapshot
	// ModeReadOnly opens an immutable file read-only.
	ModeReadOnly
	// modePageLog is a WorkingCopy's (OpenWorkingCopy), unexported: a
	// plain Store could neither checkpoint nor discard its WAL.
	modePageLog
)

const sqliteHeader = "SQLite format 3\x00"

// Open opens the database at path. A missing file is an error unless
// opt.Create; a file that is not a CAIO license database is always one, and
// is refused before anything is written to it.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	return open(ctx, path, opt, false)
}

// open opens the database at path; schemaChecked skips the schema check
// of an existing file (see OpenWorkingCopy).
func open(ctx context.Context, path string, opt Options, schemaChecked bool) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "database path %q is not usable: %v", path, err)
	}
	created := false
	switch info, err := os.Stat(abs); {
	case errors.Is(err, fs.ErrNotExist):
		if !opt.Create {
			// The fix depends on how the path was given: the caller says it.
			return nil, licensing.Errorf(licensing.CodeDBNotFound, "database %s not found", abs)
		}
		if err := createPrivate(abs); err != nil {
			return nil, err
		}
		created = true
	case err != nil:
		return nil, licensing.Wrap(licensing.CodeDBUnwritable, err, "cannot read database %s: %v", abs, unwrapPathError(err))
	case info.IsDir():
		return nil, licensing.Errorf(licensing.CodeDBInvalid, "database path %s is a directory: give the path of a .db file", abs)
	case !info.Mode().IsRegular():
		// A FIFO would block the open for ever; a device is never a database.
		return nil, licensing.Errorf(licensing.CodeDBInvalid, "database path %s is not a regular file (%s): give the path of a .db file", abs, fileKind(info.Mode()))
	default:
		if err := checkForeign(ctx, abs, opt); err != nil {
			return nil, err
		}
	}

	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	switch opt.Mode {
	case ModeReadOnly:
		q.Set("mode", "ro")
		q.Set("immutable", "1")
	case modePageLog:
		// Durability comes from S3, not from this private copy; one
		// connection holds it exclusively (the WAL index lives in memory).
		q.Add("_pragma", "locking_mode(exclusive)")
		q.Add("_pragma", "journal_mode(wal)")
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Add("_pragma", "synchronous(off)")
		q.Set("modeof", abs)
	case ModeSnapshot:
		// Durability comes from S3, not from this private copy.
		q.Add("_pragma", "journal_mode(delete)")
		q.Add("_pragma", "synchronous(off)")
		q.Set("modeof", abs) // journals as private as the file
	default:
		q.Add("_pragma", "journal_mode(wal)")
		// FULL: a committed transaction survives power loss, also in WAL mode.
		q.Add("_pragma", "synchronous(full)")
		q.Set("modeof", abs)
		if err := privateSidecars(abs); err != nil {
			return nil, err
		}
	}
	q.Set("_txlock", "immediate")
	// SQLite decodes %XX in a URI but not "+": a space in modeof must be
	// %20 (a literal "+" is already %2B).
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: abs, RawQuery: strings.ReplaceAll(q.Encode(), "+", "%20")}).String()
	var initConn, termConn func(*sqlite3.Conn) error
	var raw *rawStmts
	switch opt.Mode {
	case modePageLog:
		// Closing must not checkpoint: Discard drops an unpublished commit
		// by closing and removing the WAL.
		initConn = func(c *sqlite3.Conn) error {
			_, err := c.Config(sqlite3.DBCONFIG_NO_CKPT_ON_CLOSE, true)
			return err
		}
	case ModeShared:
		raw = &rawStmts{}
		termConn = raw.forget
	}
	db, err := driver.Open(dsn, initConn, termConn)
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeInternal, err, "cannot open database %s", abs)
	}
	db.SetMaxOpenConns(4)
	if opt.Mode == ModeSnapshot || opt.Mode == modePageLog {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	}
	s := &Store{db: db, path: abs, mode: opt.Mode, stmts: &stmtCache{db: db}, raw: raw}
	if schemaChecked && !created {
		return s, nil
	}
	if err := s.checkSchema(ctx, created, opt); err != nil {
		db.Close()
		if created {
			removeDB(abs)
		}
		return nil, err
	}
	return s, nil
}

// createPrivate creates an empty database file readable by its owner only
// (SQLite would create it 0644), and its directory 0700.
func createPrivate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return licensing.Wrap(licensing.CodeDBUnwritable, err, "cannot create directory for database %s: %v", path, unwrapPathError(err))
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return licensing.Wrap(licensing.CodeDBUnwritable, err, "cannot create database %s: %v", path, unwrapPathError(err))
	}
	return f.Close()
}

// privateSidecars keeps the WAL index (-shm) as private as the database:
// SQLite's driver creates it 0666 less the umask, and it does not honour
// modeof. It is made before the driver does, and tightened if an older
// build made it.
func privateSidecars(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return nil // the open reports it
	}
	perm := info.Mode().Perm()
	for _, suffix := range []string{"-wal", "-shm"} {
		p := path + suffix
		// Created empty with the database's mode, they never exist with a
		// wider one (SQLite's modeof narrows a file only after creating
		// it). An empty WAL is a WAL with no frames. Never removed here:
		// another process's connection may have opened this very file
		// meanwhile, and unlinking it would cut that writer off from the
		// WAL everyone else reads (seen as "disk I/O error" under load).
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
		if err == nil {
			f.Close()
			continue
		}
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&^perm != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&perm); err != nil {
				return licensing.Wrap(licensing.CodeDBUnwritable, err, "cannot restrict the permissions of %s: %v", p, unwrapPathError(err))
			}
		}
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// checkForeign refuses, before the driver writes anything (switching a file
// to WAL rewrites its header), a file that is not a CAIO license database:
// not SQLite at all, another application's (non-zero application id), or a
// SQLite database of tables of its own. An empty file is a new database.
func checkForeign(ctx context.Context, path string, opt Options) error {
	f, err := os.Open(path)
	if err != nil {
		return licensing.Wrap(licensing.CodeDBUnwritable, err, "cannot read database %s: %v", path, unwrapPathError(err))
	}
	defer f.Close()
	head := make([]byte, 100)
	n, err := io.ReadFull(f, head)
	if n == 0 && errors.Is(err, io.EOF) {
		return nil
	}
	if n < len(head) || string(head[:len(sqliteHeader)]) != sqliteHeader {
		return wrongFile(nil, "%s is not a SQLite database", path)
	}
	if binary.BigEndian.Uint32(head[68:72]) == applicationID {
		return nil // ours; checkSchema checks the rest
	}
	// The header in the file may be stale (WAL): ask SQLite, read-only.
	ro, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: "mode=ro&_pragma=busy_timeout(10000)"}).String())
	if err != nil {
		return licensing.Wrap(licensing.CodeInternal, err, "cannot open database %s", path)
	}
	defer ro.Close()
	var appID, userVersion, objects int
	err = ro.QueryRowContext(ctx, "SELECT (SELECT application_id FROM pragma_application_id), (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_schema)").
		Scan(&appID, &userVersion, &objects)
	switch {
	case err != nil:
		return wrongFile(err, "%s is not a readable SQLite database", path)
	case appID == applicationID:
		return nil
	case appID != 0 || userVersion != 0 || (objects > 0 && opt.Mode != ModeReadOnly):
		// Another application's, or tables of its own: never ours to change.
		return notCAIO(path)
	}
	return nil
}

func notCAIO(path string) error {
	return wrongFile(nil, "%s is a SQLite database but not a CAIO license database (nothing was changed)", path)
}

// ErrWrongFile is the cause of every error that says a path names
// something other than a CAIO license database: the caller, who knows
// whether the path came from --db, the environment or an argument, adds
// the fix.
var ErrWrongFile = errors.New("not a CAIO license database")

// wrongFile is a DB_INVALID error caused by ErrWrongFile (and err).
func wrongFile(err error, format string, args ...any) error {
	return licensing.Wrap(licensing.CodeDBInvalid, errors.Join(ErrWrongFile, err), format, args...)
}

func (s *Store) checkSchema(ctx context.Context, created bool, opt Options) error {
	var version, appID int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
	if err == nil {
		err = s.db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID)
	}
	if err != nil {
		return s.mapOpenError(err)
	}
	switch {
	case appID != applicationID && (appID != 0 || version != 0):
		return notCAIO(s.path)
	case appID == 0 && version == 0:
		if empty, err := s.isEmpty(ctx); err != nil || !empty {
			return notCAIO(s.path)
		}
		if !created && !opt.SkipSchemaCheck {
			return licensing.Errorf(licensing.CodeDBOutdated, "database %s is not initialised: run 'manage-licenses init-db'", s.path)
		}
		if created {
			_, err := s.Migrate(ctx)
			return err
		}
		return nil
	case version > SchemaVersion:
		return licensing.Errorf(licensing.CodeDBOutdated, "database %s has schema version %d, newer than this build knows (%d): upgrade manage-licenses", s.path, version, SchemaVersion)
	}
	// Every table, index, trigger and view must be this schema version's
	// own: a trigger planted in the file could quietly undo a revocation.
	if err := s.checkObjects(ctx, version); err != nil {
		return err
	}
	if version < SchemaVersion && !opt.SkipSchemaCheck {
		return licensing.Errorf(licensing.CodeDBOutdated, "database %s has schema version %d, older than this build's %d: run 'manage-licenses init-db' to migrate it", s.path, version, SchemaVersion)
	}
	return nil
}

func (s *Store) isEmpty(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n)
	return n == 0, err
}

func (s *Store) mapOpenError(err error) error {
	switch {
	case errors.Is(err, sqlite3.NOTADB):
		return wrongFile(err, "%s is not a SQLite database", s.path)
	case errors.Is(err, sqlite3.CANTOPEN), errors.Is(err, sqlite3.READONLY), errors.Is(err, sqlite3.PERM):
		return licensing.Wrap(licensing.CodeDBUnwritable, err, "cannot open database %s for writing: check the file's and its directory's permissions", s.path)
	case errors.Is(err, sqlite3.BUSY):
		return licensing.Wrap(licensing.CodeBusy, err, "database %s is busy: retry shortly", s.path)
	case errors.Is(err, sqlite3.CORRUPT):
		return licensing.Wrap(licensing.CodeDBInvalid, err, "database %s is corrupt: restore it from a backup", s.path)
	}
	return err
}

// Migrate brings the schema up to SchemaVersion and returns the version it
// found. Safe to run any number of times.
func (s *Store) Migrate(ctx context.Context) (from int, err error) {
	err = s.withTx(ctx, false, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&from); err != nil {
			return err
		}
		for v := from; v < SchemaVersion; v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion))
		return err
	})
	if err != nil {
		return from, s.mapOpenError(err)
	}
	return from, nil
}

// Location is the absolute path of the database file.
func (s *Store) Location() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.close()
	return s.db.Close()
}

// Version is the schema version of the database.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(licensing.Tx) error) error {
	return s.withTx(ctx, true, func(tx *sql.Tx) error { return fn(&Tx{ctx: ctx, tx: tx, stmts: s.stmts}) })
}

// Update runs fn in a write transaction and commits when it returns nil.
// The commit is durable (synchronous=FULL) before Update returns.
func (s *Store) Update(ctx context.Context, fn func(licensing.Tx) error) error {
	if s.raw == nil {
		return s.withTx(ctx, false, func(tx *sql.Tx) error { return fn(&Tx{ctx: ctx, tx: tx, stmts: s.stmts}) })
	}
	// On a connection of its own, on which the seat operations' statements
	// run directly (raw.go).
	s.stmts.warm(ctx)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.mapOpenError(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return s.mapOpenError(err)
	}
	// Rolled back first (after finish, a no-op) should fn panic: the
	// connection cannot be given back while a transaction holds it.
	defer func() {
		tx.Rollback()
		conn.Close()
	}()
	return s.finish(tx, fn(&Tx{ctx: ctx, tx: tx, stmts: s.stmts, conn: conn, raw: s.raw}))
}

func (s *Store) withTx(ctx context.Context, readOnly bool, fn func(*sql.Tx) error) error {
	s.stmts.warm(ctx)
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: readOnly})
	if err != nil {
		return s.mapOpenError(err)
	}
	return s.finish(tx, fn(tx))
}

// finish commits tx when the unit of work succeeded (err nil), else rolls
// it back and says why.
func (s *Store) finish(tx *sql.Tx, err error) error {
	if err != nil {
		tx.Rollback()
		var le *licensing.Error
		if errors.As(err, &le) {
			return err
		}
		return s.mapOpenError(err)
	}
	if err := tx.Commit(); err != nil {
		return s.mapOpenError(err)
	}
	return nil
}

// Restore replaces the database's contents with the database file src, in
// one transaction (SQLite's online backup API, run backwards), after
// checking src is a CAIO license database this build can open.
func (s *Store) Restore(ctx context.Context, src string) error {
	if err := CheckRestorable(ctx, src); err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.mapOpenError(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(interface{ Raw() *sqlite3.Conn })
		if !ok {
			return errors.New("the driver connection has no raw SQLite handle")
		}
		return c.Raw().Restore("main", src)
	})
	if err != nil {
		return s.mapOpenError(err)
	}
	return nil
}

// CheckRestorable checks that src is a CAIO license database of the
// current schema, as restore takes it.
func CheckRestorable(ctx context.Context, src string) error {
	check, err := Open(ctx, src, Options{Mode: ModeReadOnly})
	if err != nil {
		// FILE is the command's argument: the mistake is in it, not in
		// the database path.
		switch licensing.ErrorCode(err) {
		case licensing.CodeDBNotFound:
			return licensing.Wrap(licensing.CodeBadRequest, err, "cannot restore from %s: no such file; give a file written by 'manage-licenses backup'", src)
		case licensing.CodeDBInvalid, licensing.CodeDBOutdated:
			return licensing.Wrap(licensing.CodeBadRequest, err, "cannot restore from %s: %s; give a file written by 'manage-licenses backup'", src, licensing.ErrorMessage(err))
		}
		return err
	}
	return check.Close()
}

// Backup writes a consistent copy of the database to dest (which must not exist).
func (s *Store) Backup(ctx context.Context, dest string) error {
	_, err := s.db.ExecContext(ctx, "VACUUM INTO ?", dest)
	return err
}
