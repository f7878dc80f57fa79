package pagelog_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// openWAL opens path as the S3 store does: WAL, no automatic checkpoint,
// no checkpoint on close.
func openWAL(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := driver.Open("file:"+path+"?_pragma=locking_mode(exclusive)&_pragma=journal_mode(wal)&_pragma=wal_autocheckpoint(0)&_pragma=synchronous(off)",
		func(c *sqlite3.Conn) error { _, err := c.Config(sqlite3.DBCONFIG_NO_CKPT_ON_CLOSE, true); return err })
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func exec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// capture commits one transaction and returns it as a delta from state pre.
func capture(t testing.TB, db *sql.DB, path string, pre uint64, seq uint64, stmts ...string) pagelog.Delta {
	t.Helper()
	tx, _ := db.Begin()
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ps, pages, size, err := pagelog.ReadWAL(path + "-wal")
	if err != nil || len(pages) == 0 {
		t.Fatalf("WAL: %d pages, %v", len(pages), err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	post, err := pagelog.Post(f, ps, pre, pages, size)
	if err != nil {
		t.Fatal(err)
	}
	return pagelog.Delta{Seq: seq, PageSize: ps, Pages: size, Pre: pre, Post: post, OpID: "op", Time: time.Now(), Changed: pages}
}

func checkpoint(t testing.TB, db *sql.DB) {
	t.Helper()
	exec(t, db, "PRAGMA wal_checkpoint(TRUNCATE)")
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dst, b, 0o600)
}

// A delta captured from the WAL, encoded, decoded and applied to a copy of
// the state before it, gives the writer's file byte for byte; the
// checksums agree with a full recomputation.
func TestDeltaReproducesTheWritersFile(t *testing.T) {
	dir := t.TempDir()
	writer := filepath.Join(dir, "w.db")
	db := openWAL(t, writer)
	exec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	checkpoint(t, db)
	reader := filepath.Join(dir, "r.db")
	copyFile(t, writer, reader)
	cur, err := pagelog.Checksum(reader)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 20; seq++ {
		stmts := []string{fmt.Sprintf("INSERT INTO t (v) SELECT hex(randomblob(200)) FROM generate_series(1, %d)", seq*10)}
		if seq == 15 {
			stmts = []string{"DELETE FROM t WHERE id % 2 = 0"}
		}
		d := capture(t, db, writer, cur, seq, stmts...)
		checkpoint(t, db)
		got := roundTrip(t, d)
		if err := pagelog.Apply(reader, cur, got); err != nil {
			t.Fatalf("delta %d: %v", seq, err)
		}
		cur = got.Post
		if full, _ := pagelog.Checksum(reader); full != cur {
			t.Fatalf("delta %d: incremental checksum %x, full %x", seq, cur, full)
		}
		w, _ := os.ReadFile(writer)
		r, _ := os.ReadFile(reader)
		if !bytes.Equal(w, r) {
			t.Fatalf("delta %d: the reader's file differs from the writer's", seq)
		}
	}
	// VACUUM shrinks the file: the delta cuts pages off.
	before, _ := os.Stat(writer)
	exec(t, db, "DELETE FROM t WHERE id > 10")
	checkpoint(t, db)
	copyFile(t, writer, reader)
	cur, _ = pagelog.Checksum(reader)
	exec(t, db, "VACUUM")
	_, pages, size, _ := pagelog.ReadWAL(writer + "-wal")
	f, _ := os.Open(writer)
	post, err := pagelog.Post(f, 4096, cur, pages, size)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkpoint(t, db)
	after, _ := os.Stat(writer)
	if after.Size() >= before.Size() {
		t.Fatalf("VACUUM did not shrink the file: %d -> %d", before.Size(), after.Size())
	}
	if err := pagelog.Apply(reader, cur, pagelog.Delta{Seq: 21, PageSize: 4096, Pages: size, Pre: cur, Post: post, Changed: pages}); err != nil {
		t.Fatal(err)
	}
	w, _ := os.ReadFile(writer)
	r, _ := os.ReadFile(reader)
	if !bytes.Equal(w, r) {
		t.Fatal("after VACUUM the reader's file differs")
	}
	db.Close()
}

// Corrupt, foreign and out-of-order deltas are refused and change nothing.
func TestBadDeltasChangeNothing(t *testing.T) {
	dir := t.TempDir()
	writer := filepath.Join(dir, "w.db")
	db := openWAL(t, writer)
	exec(t, db, "CREATE TABLE t (v)")
	checkpoint(t, db)
	reader := filepath.Join(dir, "r.db")
	copyFile(t, writer, reader)
	cur, _ := pagelog.Checksum(reader)
	d := capture(t, db, writer, cur, 1, "INSERT INTO t VALUES ('a')")
	enc, _ := pagelog.Encode(d)
	original, _ := os.ReadFile(reader)

	flipped := bytes.Clone(enc)
	flipped[len(flipped)/2] ^= 1
	if _, err := pagelog.Decode(flipped); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("a flipped bit: %v", err)
	}
	if _, err := pagelog.Decode(enc[:len(enc)-1]); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("a truncated delta: %v", err)
	}
	good, _ := pagelog.Decode(enc)
	if err := pagelog.Apply(reader, cur^1, good); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("a delta for another base: %v", err)
	}
	// Re-signed with a consistent trailer but a wrong result: still caught.
	lying := good
	lying.Post ^= 1
	reenc, _ := pagelog.Encode(lying)
	lied, _ := pagelog.Decode(reenc)
	if err := pagelog.Apply(reader, cur, lied); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("a delta whose result is not what it says: %v", err)
	}
	if now, _ := os.ReadFile(reader); !bytes.Equal(now, original) {
		t.Fatal("a refused delta changed the file")
	}
	if err := pagelog.Apply(reader, cur, good); err != nil {
		t.Fatalf("the good delta: %v", err)
	}
	db.Close()
}
