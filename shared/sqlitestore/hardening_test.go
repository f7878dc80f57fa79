package sqlitestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func execRaw(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// The attack: a trigger planted in the file makes revoke-license report
// success while the license stays active (or the event log lose its
// guard). A database whose schema objects are not its version's own is
// refused on open, naming the object.
func TestTamperedSchemaIsRefused(t *testing.T) {
	cases := map[string]struct {
		sql  string
		name string
	}{
		"planted trigger": {`CREATE TRIGGER keep_active AFTER UPDATE OF status ON licenses
			BEGIN UPDATE licenses SET status = 'active' WHERE id = NEW.id; END`, `trigger "keep_active"`},
		"planted view":          {`CREATE VIEW v AS SELECT * FROM licenses`, `view "v"`},
		"planted table":         {`CREATE TABLE extra (x)`, `table "extra"`},
		"planted index":         {`CREATE INDEX sneaky ON licenses (tier)`, `index "sneaky"`},
		"dropped guard":         {`DROP TRIGGER events_no_delete`, `trigger "events_no_delete"`},
		"guard rewritten":       {`DROP TRIGGER events_no_update; CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT 1; END`, `trigger "events_no_update"`},
		"table with new column": {`ALTER TABLE licenses ADD COLUMN backdoor TEXT`, `table "licenses"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, path := create(t)
			s.Close()
			execRaw(t, path, tc.sql)
			for _, opt := range []sqlitestore.Options{{}, {SkipSchemaCheck: true}, {Mode: sqlitestore.ModeReadOnly}} {
				_, err := sqlitestore.Open(context.Background(), path, opt)
				if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), tc.name) {
					t.Fatalf("open %+v: %v, want DB_INVALID naming %s", opt, err, tc.name)
				}
			}
		})
	}
	// ANALYZE's statistics are not logic: they pass.
	s, path := create(t)
	s.Close()
	execRaw(t, path, "ANALYZE")
	if s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{}); err != nil {
		t.Fatalf("after ANALYZE: %v", err)
	} else {
		s.Close()
	}
}

// A negative schema version (user_version is signed) was never made by a
// build: refused like a tampered schema, not replayed.
func TestNegativeSchemaVersionIsRefused(t *testing.T) {
	s, path := create(t)
	s.Close()
	execRaw(t, path, "PRAGMA user_version = -1")
	for _, opt := range []sqlitestore.Options{{}, {SkipSchemaCheck: true}} {
		_, err := sqlitestore.Open(context.Background(), path, opt)
		if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "schema version -1") {
			t.Fatalf("open %+v: %v, want DB_INVALID", opt, err)
		}
	}
}

func fileDigest(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// init-db (Create + SkipSchemaCheck) on another application's SQLite file
// refuses and leaves the file byte for byte as it was, WAL mode included.
func TestForeignDatabaseIsLeftUntouched(t *testing.T) {
	cases := map[string][]string{
		"tables, no application id": {"CREATE TABLE notes (body TEXT)", "INSERT INTO notes VALUES ('keep me')"},
		"another application id":    {"PRAGMA application_id = 1234"},
		"a user version":            {"PRAGMA user_version = 7"},
	}
	for name, stmts := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.db")
			execRaw(t, path, stmts...)
			before := fileDigest(t, path)
			for _, opt := range []sqlitestore.Options{{Create: true, SkipSchemaCheck: true}, {}, {Mode: sqlitestore.ModeSnapshot}} {
				_, err := sqlitestore.Open(context.Background(), path, opt)
				if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "not a CAIO license database") {
					t.Fatalf("open %+v: %v, want DB_INVALID", opt, err)
				}
			}
			if fileDigest(t, path) != before {
				t.Fatal("the foreign database was changed")
			}
			for _, sfx := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + sfx); err == nil {
					t.Errorf("%s was created beside the foreign database", sfx)
				}
			}
		})
	}
}

// --db naming a FIFO, a device or a directory fails at once (a FIFO used
// to block the open for ever).
func TestNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, says := range map[string]string{fifo: "named pipe", "/dev/null": "device", dir: "directory"} {
		done := make(chan error, 1)
		go func() {
			_, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{Create: true, SkipSchemaCheck: true})
			done <- err
		}()
		select {
		case err := <-done:
			if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), says) {
				t.Errorf("%s: %v, want DB_INVALID saying %q", path, err, says)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the open hangs", path)
		}
	}
}

// The database and its WAL files are readable by their owner only,
// whatever the umask.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	s, path := create(t)
	err := s.Update(context.Background(), func(tx licensing.Tx) error { return tx.PutSetting("probe", []byte("x")) })
	if err != nil {
		t.Fatal(err)
	}
	other, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, sfx := range []string{"", "-wal", "-shm"} {
		info, err := os.Stat(path + sfx)
		if err != nil {
			t.Fatalf("%s: %v", sfx, err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(path+sfx), info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(filepath.Dir(path)); info.Mode().Perm() != 0o700 {
		t.Errorf("the database's new directory has mode %04o, want 0700", info.Mode().Perm())
	}
	// A backup is private too.
	dest := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	var head [16]byte
	f, _ := os.Open(dest)
	f.Read(head[:])
	f.Close()
	if !bytes.HasPrefix(head[:], []byte("SQLite format 3")) {
		t.Fatal("the backup is not a database")
	}
}
