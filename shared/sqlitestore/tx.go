package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Tx is a licensing.Tx on one SQLite transaction.
type Tx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *stmtCache
	// conn is the connection the transaction runs on, when the seat
	// operations' statements may run on it directly (raw.go), with the
	// statements prepared on each connection; else nil.
	conn *sql.Conn
	raw  *rawStmts
	// grants is what SeatGrants read last in this transaction, for
	// AddSeatGrant.
	grants grantsRead
}

var _ licensing.Tx = (*Tx)(nil)

// timeFormat is RFC 3339 in UTC at second precision: fixed width, so text
// order is time order.
const timeFormat = "2006-01-02T15:04:05Z"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

func notFound(what string) error {
	return licensing.Errorf(licensing.CodeNotFound, "%s not found", what)
}

func (t *Tx) exec(query string, args ...any) error {
	_, err := t.execContext(query, args...)
	return execError(err)
}

// execError says which failures of a write are the caller's (a row that
// exists already).
func execError(err error) error {
	if errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY) || errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		return licensing.Wrap(licensing.CodeAlreadyExists, err, "already exists")
	}
	return err
}

// changes counts the rows this connection has changed so far.
func (t *Tx) changes() (int64, error) {
	var n int64
	err := t.queryRow("SELECT total_changes()").Scan(&n)
	return n, err
}

func queryAll[T any](t *Tx, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func optionalTS(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTS(s.String)
	return &t
}

func nullableTS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}
