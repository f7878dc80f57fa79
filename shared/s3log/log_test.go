package s3log_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"testing"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/s3log"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// The engine on a working copy of its own: a table of items and one of
// operation ids, nothing of licensing.

const key = "engine/test.db"

type items struct {
	db   *sql.DB
	path string
}

func pageLogDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"locking_mode(exclusive)", "journal_mode(wal)", "wal_autocheckpoint(0)", "synchronous(off)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
}

func openItems(_ context.Context, path string, _ bool) (*items, error) {
	db, err := driver.Open(pageLogDSN(path), func(c *sqlite3.Conn) error {
		_, err := c.Config(sqlite3.DBCONFIG_NO_CKPT_ON_CLOSE, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return &items{db: db, path: path}, nil
}

func (c *items) HasOperation(ctx context.Context, id string) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM ops WHERE id = ?", id).Scan(&n)
	return n > 0, err
}

func (c *items) Checkpoint(ctx context.Context) error {
	_, err := c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

func (c *items) Discard() error {
	err := c.db.Close()
	os.Remove(c.path + "-wal")
	os.Remove(c.path + "-shm")
	return err
}

func (c *items) Close() error { return c.db.Close() }

// SchemaDigest is the schema's SQL, as it stands.
func (c *items) SchemaDigest(ctx context.Context) (string, error) {
	var text string
	err := c.db.QueryRowContext(ctx, "SELECT group_concat(coalesce(sql, ''), ';') FROM sqlite_schema").Scan(&text)
	return text, err
}

func (c *items) list(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT v FROM items ORDER BY v")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		out = append(out, v)
	}
	return out, rows.Err()
}

func newLog(t *testing.T, srv *s3test.Server) *s3log.Log[*items] {
	t.Helper()
	srv.SetEnv(t, key)
	obj, err := s3log.DialS3(context.Background(), s3test.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := s3log.New(obj, key, s3log.Config[*items]{Open: openItems, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return lg
}

func build(path string) error {
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec("CREATE TABLE items (v TEXT PRIMARY KEY); CREATE TABLE ops (id TEXT PRIMARY KEY)")
	return err
}

func create(t *testing.T, lg *s3log.Log[*items]) {
	t.Helper()
	if created, err := lg.Create(context.Background(), build); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
}

func add(lg *s3log.Log[*items], v string) error {
	return lg.Update(context.Background(), nil, func(c *items, opID string) (bool, error) {
		tx, err := c.db.Begin()
		if err != nil {
			return false, err
		}
		defer tx.Rollback()
		if _, err := tx.Exec("INSERT INTO items VALUES (?)", v); err != nil {
			return false, err
		}
		if _, err := tx.Exec("INSERT INTO ops VALUES (?)", opID); err != nil {
			return false, err
		}
		return true, tx.Commit()
	})
}

func list(t *testing.T, lg *s3log.Log[*items]) []string {
	t.Helper()
	var out []string
	err := lg.View(context.Background(), func(c *items) (err error) {
		out, err = c.list(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func deltaKey(seq int) string { return fmt.Sprintf("%s.log/%020d", key, seq) }

// Each of the log's own errors is told apart by its type, not its text.
func TestTypedErrors(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	lg := newLog(t, srv)
	err := lg.Sync(context.Background())
	var se *s3log.SyncError
	if !errors.Is(err, s3log.ErrNotFound) || !errors.As(err, &se) {
		t.Fatalf("before create: %v, want a SyncError that is ErrNotFound", err)
	}
	create(t, lg)
	if created, err := lg.Create(context.Background(), build); err != nil || created {
		t.Fatalf("a second create: %v %v, want none", created, err)
	}
	for _, v := range []string{"a", "b"} {
		if err := add(lg, v); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(t, newLog(t, srv)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a cold log reads %v", got)
	}
	// Delta 2 damaged: CorruptError naming it, and the reader's state kept.
	reader := newLog(t, srv)
	bad := srv.Object(t, deltaKey(2))
	bad[len(bad)/2] ^= 0x40
	srv.PutObject(t, deltaKey(2), bad)
	err = reader.Sync(context.Background())
	var ce *s3log.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, s3log.ErrCorrupt) || !ce.Delta || ce.Seq != 2 || ce.Problem != s3log.Undecodable {
		t.Fatalf("a damaged delta: %v (%+v)", err, ce)
	}
	// Not a database at all.
	srv.PutObject(t, key, []byte("not SQLite"))
	err = newLog(t, srv).Sync(context.Background())
	if !errors.As(err, &ce) || ce.Problem != s3log.NotSQLite || ce.Delta {
		t.Fatalf("an object that is not SQLite: %v", err)
	}
	// A missing bucket is configuration, never retried as unavailable.
	t.Setenv("AWS_REGION", "us-east-1")
	obj, _ := s3log.DialS3(context.Background(), "no-such-bucket")
	missing, err := s3log.New(obj, key, s3log.Config[*items]{Open: openItems, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	err = add(missing, "x")
	if !errors.Is(err, s3log.ErrNoBucket) || errors.Is(err, s3log.ErrUnavailable) {
		t.Fatalf("a missing bucket: %v", err)
	}
}

// Concurrent writers through conflicts: every write lands once.
func TestWritersConflictAndRetry(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	create(t, newLog(t, srv))
	logs := []*s3log.Log[*items]{newLog(t, srv), newLog(t, srv), newLog(t, srv)}
	errs := make(chan error, 30)
	done := make(chan bool)
	for w, lg := range logs {
		go func() {
			for i := range 10 {
				errs <- add(lg, fmt.Sprintf("w%d-%02d", w, i))
			}
			done <- true
		}()
	}
	for range logs {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := list(t, newLog(t, srv)); len(got) != 30 {
		t.Fatalf("%d items, want 30", len(got))
	}
}
