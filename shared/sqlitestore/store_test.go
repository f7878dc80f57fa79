package sqlitestore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func create(t *testing.T) (*sqlitestore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "licenses.db")
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestCreateAppliesEveryMigration(t *testing.T) {
	s, path := create(t)
	from, err := s.Migrate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if from != sqlitestore.SchemaVersion {
		t.Fatalf("a new database is at version %d, want %d", from, sqlitestore.SchemaVersion)
	}
	s.Close()
	// Reopening without Create works and needs no migration.
	s2, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	info, err := os.Stat(filepath.Dir(path))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("database directory mode %v, want 0700 (%v)", info.Mode().Perm(), err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "notes.txt")
	os.WriteFile(garbage, []byte("these are not the tables you are looking for"), 0o600)
	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite3", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	future := filepath.Join(dir, "future.db")
	s, err := sqlitestore.Open(context.Background(), future, sqlitestore.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, _ = sql.Open("sqlite3", future)
	db.Exec("PRAGMA user_version = 999")
	db.Close()
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o600)

	cases := []struct {
		name, path string
		opt        sqlitestore.Options
		code       licensing.Code
		says       string
	}{
		{"missing file", filepath.Join(dir, "typo.db"), sqlitestore.Options{}, licensing.CodeDBNotFound, "not found"}, // config adds the hint
		{"not sqlite", garbage, sqlitestore.Options{}, licensing.CodeDBInvalid, "not a SQLite database"},
		{"not sqlite even with create", garbage, sqlitestore.Options{Create: true}, licensing.CodeDBInvalid, "not a SQLite database"},
		{"someone else's sqlite", foreign, sqlitestore.Options{}, licensing.CodeDBInvalid, "not a CAIO license database"},
		{"directory", dir, sqlitestore.Options{}, licensing.CodeDBInvalid, "directory"},
		{"newer schema", future, sqlitestore.Options{}, licensing.CodeDBOutdated, "upgrade"},
		{"empty file not initialised", empty, sqlitestore.Options{}, licensing.CodeDBOutdated, "init-db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := sqlitestore.Open(context.Background(), c.path, c.opt)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if licensing.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got [%s] %v; want [%s] containing %q", licensing.ErrorCode(err), err, c.code, c.says)
			}
		})
	}
	if raw, _ := os.ReadFile(garbage); string(raw) != "these are not the tables you are looking for" {
		t.Fatal("a failed open changed a file that is not a database")
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.db")); err == nil {
		t.Fatal("opening a missing path without Create created it")
	}
}

func TestUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a path under a file instead.
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		_, err := sqlitestore.Open(context.Background(), filepath.Join(file, "x.db"), sqlitestore.Options{Create: true})
		if licensing.ErrorCode(err) != licensing.CodeDBUnwritable {
			t.Fatalf("got [%s] %v, want DB_UNWRITABLE", licensing.ErrorCode(err), err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	_, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "x", "x.db"), sqlitestore.Options{Create: true})
	if licensing.ErrorCode(err) != licensing.CodeDBUnwritable {
		t.Fatalf("got [%s] %v, want DB_UNWRITABLE", licensing.ErrorCode(err), err)
	}
}

func TestOlderSchemaNeedsInitDBWhichMigratesIt(t *testing.T) {
	// A database at schema version 0: marked as ours, no tables yet.
	path := filepath.Join(t.TempDir(), "old.db")
	db, _ := sql.Open("sqlite3", path)
	if _, err := db.Exec("PRAGMA application_id = 0x4341494F"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx := context.Background()
	_, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if licensing.ErrorCode(err) != licensing.CodeDBOutdated || !strings.Contains(err.Error(), "init-db") {
		t.Fatalf("got [%s] %v, want DB_OUTDATED naming init-db", licensing.ErrorCode(err), err)
	}
	// What init-db does: open whatever the version, migrate, and again.
	for i, wantFrom := range []int{0, sqlitestore.SchemaVersion} {
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{SkipSchemaCheck: true})
		if err != nil {
			t.Fatal(err)
		}
		from, err := s.Migrate(ctx)
		s.Close()
		if err != nil || from != wantFrom {
			t.Fatalf("run %d: migrated from %d (%v), want %d", i+1, from, err, wantFrom)
		}
	}
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("after init-db: %v", err)
	}
	s.Close()
}

func TestConstraints(t *testing.T) {
	s, _ := create(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	err := s.Update(ctx, func(tx licensing.Tx) error {
		return tx.InsertCustomer(licensing.Customer{ID: "C1", Name: "One", CreatedAt: now, UpdatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		fn   func(tx licensing.Tx) error
		code licensing.Code
	}{
		"duplicate customer": {func(tx licensing.Tx) error {
			return tx.InsertCustomer(licensing.Customer{ID: "C1", Name: "Again", CreatedAt: now, UpdatedAt: now})
		}, licensing.CodeAlreadyExists},
		"license of unknown customer (foreign key)": {func(tx licensing.Tx) error {
			return tx.InsertLicense(licensing.License{ID: "l1", CustomerID: "NOPE", Tier: "t", MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1, Status: licensing.StatusActive})
		}, licensing.CodeInternal},
		"zero max instances (check)": {func(tx licensing.Tx) error {
			return tx.InsertLicense(licensing.License{ID: "l1", CustomerID: "C1", Tier: "t", MaxInstances: 0, MaxServices: 1, MaxRequestsPerDay: 1, Status: licensing.StatusActive})
		}, licensing.CodeInternal},
		"missing customer": {func(tx licensing.Tx) error {
			_, err := tx.Customer("NOPE")
			return err
		}, licensing.CodeNotFound},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.Update(ctx, c.fn)
			if licensing.ErrorCode(err) != c.code {
				t.Fatalf("got [%s] %v, want %s", licensing.ErrorCode(err), err, c.code)
			}
		})
	}
	// A failed unit of work leaves nothing behind.
	var n int
	s.View(ctx, func(tx licensing.Tx) error {
		cs, err := tx.Customers()
		n = len(cs)
		return err
	})
	if n != 1 {
		t.Fatalf("%d customers after failed writes, want 1", n)
	}
}

func TestEventLogIsAppendOnly(t *testing.T) {
	s, path := create(t)
	ctx := context.Background()
	if err := s.Update(ctx, func(tx licensing.Tx) error {
		return tx.AppendEvent(licensing.Event{At: time.Now(), Kind: "test", Actor: "test"})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, _ := sql.Open("sqlite3", path)
	defer db.Close()
	for _, q := range []string{"UPDATE events SET kind = 'x'", "DELETE FROM events"} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: got %v, want the append-only error", q, err)
		}
	}
}

func TestRollbackOnError(t *testing.T) {
	s, _ := create(t)
	ctx := context.Background()
	boom := licensing.Errorf(licensing.CodeBadRequest, "boom")
	err := s.Update(ctx, func(tx licensing.Tx) error {
		now := time.Now()
		if err := tx.InsertCustomer(licensing.Customer{ID: "C1", Name: "One", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("got %v, want the function's own error back", err)
	}
	s.View(ctx, func(tx licensing.Tx) error {
		if _, err := tx.Customer("C1"); licensing.ErrorCode(err) != licensing.CodeNotFound {
			t.Fatalf("customer written by a failed unit of work: %v", err)
		}
		return nil
	})
}

// A working copy keeps the ids of the writes of the last OperationWindow
// (the writer looks for its own while it retries), and no more: they are
// in every snapshot a cold start loads.
func TestWorkingCopyKeepsOperationIDsForTheWindow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "copy.db")
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true, Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	wc, err := sqlitestore.OpenWorkingCopy(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(id string, at time.Time) {
		t.Helper()
		changed, err := wc.UpdateOperation(ctx, id, at, func(tx licensing.Tx) error {
			return tx.PutSetting("test", []byte(id))
		})
		if err != nil || !changed {
			t.Fatalf("write %s: %v", id, err)
		}
		if err := wc.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	has := func(id string) bool {
		t.Helper()
		ok, err := wc.HasOperation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	write("first", t0)
	write("second", t0.Add(sqlitestore.OperationWindow-time.Second))
	if !has("first") || !has("second") {
		t.Fatal("an id within the window is gone")
	}
	write("third", t0.Add(sqlitestore.OperationWindow+time.Second))
	if has("first") || !has("second") || !has("third") {
		t.Fatalf("after the window: first %v, second %v, third %v; want only the first gone", has("first"), has("second"), has("third"))
	}
}
