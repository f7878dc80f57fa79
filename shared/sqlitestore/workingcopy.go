package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// WorkingCopy is a private copy of a database that is published elsewhere
// one commit at a time (the S3 log, shared/s3log): WAL mode with no
// automatic checkpoint, so that after a commit the WAL holds exactly the
// pages the transaction changed (pagelog.ReadWAL) and the main file still
// holds the state before it, until Checkpoint (the commit was published)
// or Discard (it was not). Every write records an operation id, so that a
// write whose publication went unconfirmed can be recognised later.
//
// It is a Store besides (View, Migrate, Backup, Restore, Vacuum ...); the
// plain Store has none of the methods below, which only make sense here.
type WorkingCopy struct {
	*Store
}

// OpenWorkingCopy opens the working copy at path, whatever its schema
// version (init-db migrates through it). With schemaChecked it skips the
// schema check too: the caller checked this file and knows its schema
// unchanged since (the S3 log, by the schema cookie, when it reopens its
// copy after applying deltas).
func OpenWorkingCopy(ctx context.Context, path string, schemaChecked bool) (*WorkingCopy, error) {
	s, err := open(ctx, path, Options{Mode: modePageLog, SkipSchemaCheck: true}, schemaChecked)
	if err != nil {
		return nil, err
	}
	return &WorkingCopy{s}, nil
}

// RecordOperation records operation id as applied (restore publishes a
// file with its operation id in it).
func (w *WorkingCopy) RecordOperation(ctx context.Context, id string, at time.Time) error {
	_, err := w.db.ExecContext(ctx, "INSERT INTO operations (id, applied_at) VALUES (?, ?)", id, ts(at))
	return err
}

// Checkpoint moves committed pages from the WAL into the main file and
// empties the WAL: the commit was published.
func (w *WorkingCopy) Checkpoint(ctx context.Context) error {
	var busy, logged, moved int
	if err := w.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &moved); err != nil {
		return w.mapOpenError(err)
	}
	if busy != 0 {
		return licensing.Errorf(licensing.CodeInternal, "checkpoint of %s did not complete", w.path)
	}
	return nil
}

// Discard closes the working copy without checkpointing and removes its
// WAL: the main file is left in the state of the last Checkpoint.
func (w *WorkingCopy) Discard() error {
	w.stmts.close()
	err := w.db.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		if rerr := os.Remove(w.path + suffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}

// OperationWindow is how long the database keeps the id of a write
// (table operations): the writer looks for its id only while it retries
// that write, which s3store bounds to a fraction of this (shared/s3store:
// maxWrite). It was a week: a fleet's week of ids (about 80,000 for 2,000
// instances restarting daily) was 11 MB in every snapshot, five times the
// live state; an hour of them is a few hundred KB at most.
const OperationWindow = time.Hour

// UpdateOperation runs fn like Update and records operation id with it,
// when fn changed anything. It reports whether anything changed.
func (w *WorkingCopy) UpdateOperation(ctx context.Context, id string, at time.Time, fn func(licensing.Tx) error) (changed bool, err error) {
	err = w.withTx(ctx, false, func(tx *sql.Tx) error {
		t := &Tx{ctx: ctx, tx: tx, stmts: w.stmts}
		before, err := t.changes()
		if err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
		after, err := t.changes()
		if err != nil || after == before {
			return err
		}
		changed = true
		// Keep the ids of OperationWindow: far longer than any write's retries.
		if err := t.exec("DELETE FROM operations WHERE applied_at < ?", ts(at.Add(-OperationWindow))); err != nil {
			return err
		}
		return t.exec("INSERT INTO operations (id, applied_at) VALUES (?, ?)", id, ts(at))
	})
	return changed, err
}

// HasOperation reports whether the write with this id was applied.
func (w *WorkingCopy) HasOperation(ctx context.Context, id string) (bool, error) {
	var n int
	err := w.db.QueryRowContext(ctx, "SELECT count(*) FROM operations WHERE id = ?", id).Scan(&n)
	return n > 0, err
}

// SchemaDigest is a digest of every schema object (type, name, table and
// SQL): a delta can change the schema and put its cookie back, so the
// cookie alone does not say the schema is the one last checked.
func (w *WorkingCopy) SchemaDigest(ctx context.Context) (string, error) {
	rows, err := w.db.QueryContext(ctx, "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var typ, name, tbl, text string
		if err := rows.Scan(&typ, &name, &tbl, &text); err != nil {
			return "", err
		}
		for _, f := range []string{typ, name, tbl, text} {
			h.Write([]byte(f))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil)), rows.Err()
}
