package sqlitestore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// stmtCache keeps each query prepared, once per connection (database/sql
// re-prepares a statement only on a connection that lacks it): parsing the
// SQL anew was a quarter of a write's time.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds the cache; queries past it run unprepared.
const maxStmts = 256

func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s
	}
	if len(c.m) >= maxStmts || c.db.Stats().Idle == 0 {
		return nil
	}
	// Preparing takes a connection from the pool; inside a transaction,
	// waiting for one could wait on transactions that wait on this one.
	// Only an idle one is used, briefly; else the query runs unprepared
	// this time.
	ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared run reports the error
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = s
	return s
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m = nil
}

// stmt is query prepared for this transaction, or nil.
func (t *Tx) stmt(query string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	s := t.stmts.get(t.ctx, query)
	if s == nil {
		return nil
	}
	return t.tx.StmtContext(t.ctx, s)
}

func (t *Tx) execContext(query string, args ...any) (sql.Result, error) {
	if s := t.stmt(query); s != nil {
		return s.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

func (t *Tx) queryRow(query string, args ...any) *sql.Row {
	if s := t.stmt(query); s != nil {
		return s.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

func (t *Tx) query(query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(query); s != nil {
		return s.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}
