package sqlitestore

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/ncruces/go-sqlite3"
)

// The statements of the seat operations (activate, validate, deactivate:
// the server's hot path) run on the write transaction's own connection
// directly, past database/sql and the driver, which cost more per
// statement than SQLite does for these short ones: a one-row SELECT of 11
// columns took 15 µs through them and 4.5 µs direct, and a first
// activation makes ten statements. database/sql asks the driver for the
// columns' names and declared types on every query, converts every value,
// and allocates a statement, rows and a context watcher per call.
//
// How it stays correct:
//
//   - The transaction is still database/sql's (begun, committed and rolled
//     back by it, on a connection held for it alone: sql.Conn). A raw
//     statement runs on that connection (sql.Conn.Raw holds its lock), so
//     it is inside the same SQLite transaction as every other statement of
//     the unit of work, and commits or rolls back with it.
//   - Before each statement it checks that the context is live and the
//     connection is in a transaction: database/sql rolls a transaction back
//     when its context ends, and a statement run after that would commit
//     on its own (autocommit). The check and the statement run under the
//     connection's lock, so the rollback cannot come between them.
//   - Statements are prepared once per connection (as stmtCache does for
//     database/sql) and finalised by the driver's close hook (rawStmts.
//     forget) before the connection closes: SQLite refuses to close a
//     connection with statements left.
//   - Values are read whole and reset before the call returns (one row
//     at most: rawRow), so a cached statement is never in use twice, and
//     they are converted into the caller's variables by database/sql's own
//     rules (sql.Null[T].Scan).
//
// Only local databases (ModeShared) take this path; the other modes and
// every read-only transaction keep database/sql's.

// rawStmts are the statements prepared on each connection.
type rawStmts struct {
	mu sync.Mutex
	m  map[*sqlite3.Conn]map[string]*sqlite3.Stmt
}

func (r *rawStmts) get(c *sqlite3.Conn, query string) (*sqlite3.Stmt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.m[c][query]; ok {
		return s, nil
	}
	s, tail, err := c.Prepare(query)
	if err != nil {
		return nil, err
	}
	if s == nil || tail != "" {
		s.Close()
		return nil, fmt.Errorf("sqlitestore: not one SQL statement: %q", query)
	}
	if r.m == nil {
		r.m = map[*sqlite3.Conn]map[string]*sqlite3.Stmt{}
	}
	if r.m[c] == nil {
		r.m[c] = map[string]*sqlite3.Stmt{}
	}
	r.m[c][query] = s
	return s, nil
}

// forget finalises the statements of a connection that is closing (the
// driver's close hook, called before SQLite checks for statements left).
func (r *rawStmts) forget(c *sqlite3.Conn) error {
	r.mu.Lock()
	stmts := r.m[c]
	delete(r.m, c)
	r.mu.Unlock()
	var errs []error
	for _, s := range stmts {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// onConn runs query, bound to args, on the transaction's connection: when
// row is set, up to its first row, read into row (sql.ErrNoRows there if
// there is none); else to its end.
func (t *Tx) onConn(query string, args []any, row *rawRow) error {
	return t.conn.Raw(func(dc any) error {
		rc, ok := dc.(interface{ Raw() *sqlite3.Conn })
		if !ok {
			return errors.New("sqlitestore: the driver connection has no raw SQLite handle")
		}
		c := rc.Raw()
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if c.GetAutocommit() {
			return sql.ErrTxDone // rolled back already: not a statement of its own
		}
		s, err := t.raw.get(c, query)
		if err != nil {
			return err
		}
		if old := c.SetInterrupt(t.ctx); old != t.ctx {
			defer c.SetInterrupt(old)
		}
		if err := bind(s, args); err != nil {
			s.ClearBindings()
			return err
		}
		if row == nil {
			return s.Exec()
		}
		defer s.Reset()
		if !s.Step() {
			if err := s.Err(); err != nil {
				return err
			}
			row.err = sql.ErrNoRows
			return nil
		}
		row.vals = make([]any, s.ColumnCount())
		for i := range row.vals {
			switch s.ColumnType(i) {
			case sqlite3.INTEGER:
				row.vals[i] = s.ColumnInt64(i)
			case sqlite3.FLOAT:
				row.vals[i] = s.ColumnFloat(i)
			case sqlite3.TEXT:
				row.vals[i] = s.ColumnText(i)
			case sqlite3.BLOB:
				row.vals[i] = s.ColumnBlob(i, []byte{})
			}
		}
		return nil
	})
}

// bind binds every parameter of s, or fails: a parameter left unbound
// would keep the previous call's value.
func bind(s *sqlite3.Stmt, args []any) error {
	if n := s.BindCount(); n != len(args) {
		return fmt.Errorf("sql: expected %d arguments, got %d", n, len(args))
	}
	for i, a := range args {
		var err error
		switch v := a.(type) {
		case nil:
			err = s.BindNull(i + 1)
		case string:
			err = s.BindText(i+1, v)
		case int:
			err = s.BindInt64(i+1, int64(v))
		case int64:
			err = s.BindInt64(i+1, v)
		case uint32:
			err = s.BindInt64(i+1, int64(v))
		case bool:
			err = s.BindBool(i+1, v) // 1 or 0, as database/sql binds it
		default:
			return fmt.Errorf("sqlitestore: argument %d of type %T not supported on the seat operations' path", i+1, a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rawRow is a row read whole (or the error that stopped it).
type rawRow struct {
	vals []any
	err  error
}

// Scan converts the row's values as sql.Row.Scan does.
func (r rawRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if len(dest) != len(r.vals) {
		return fmt.Errorf("sql: expected %d destination arguments in Scan, not %d", len(r.vals), len(dest))
	}
	for i, d := range dest {
		var err error
		switch d := d.(type) {
		case *sql.NullString:
			err = d.Scan(r.vals[i])
		case *string:
			err = scanNotNull(d, r.vals[i])
		case *int:
			err = scanNotNull(d, r.vals[i])
		case *int64:
			err = scanNotNull(d, r.vals[i])
		case *uint32:
			err = scanNotNull(d, r.vals[i])
		case *bool:
			err = scanNotNull(d, r.vals[i])
		default:
			err = fmt.Errorf("destination of type %T not supported on the seat operations' path", d)
		}
		if err != nil {
			return fmt.Errorf("sql: Scan error on column index %d: %w", i, err)
		}
	}
	return nil
}

// scanNotNull converts v into d by database/sql's rules, NULL included (an
// error: d cannot hold it).
func scanNotNull[T any](d *T, v any) error {
	if v == nil {
		return fmt.Errorf("converting NULL to %T is unsupported", *d)
	}
	var n sql.Null[T]
	if err := n.Scan(v); err != nil {
		return err
	}
	*d = n.V
	return nil
}

// fastRow is queryRow for the statements of the seat operations: on the
// transaction's connection directly when it has one (see above).
func (t *Tx) fastRow(query string, args ...any) interface{ Scan(...any) error } {
	if t.conn == nil {
		return t.queryRow(query, args...)
	}
	var row rawRow
	if err := t.onConn(query, args, &row); err != nil {
		return rawRow{err: err}
	}
	return row
}

// fastExec is exec for the statements of the seat operations.
func (t *Tx) fastExec(query string, args ...any) error {
	if t.conn == nil {
		return t.exec(query, args...)
	}
	return execError(t.onConn(query, args, nil))
}
