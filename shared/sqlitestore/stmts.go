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
//
// Preparing takes a connection from the pool. Inside a transaction the
// pool may have none to give (S3 mode has one connection, busy with the
// transaction), and waiting for one could wait on transactions that wait on
// this one. So a query met unprepared inside a transaction runs unprepared
// that once and is prepared before the next transaction begins.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

// maxStmts bounds the cache; queries past it run unprepared.
const maxStmts = 256

func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s
	}
	if len(c.m)+len(c.wanted) < maxStmts {
		if c.wanted == nil {
			c.wanted = map[string]bool{}
		}
		c.wanted[query] = true
	}
	return nil
}

// warm prepares the queries met unprepared, between transactions.
func (c *stmtCache) warm(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.wanted) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	for q := range c.wanted {
		s, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue // tried again before the next transaction
		}
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		c.m[q] = s
		delete(c.wanted, q)
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m, c.wanted = nil, nil
}

// stmt is query prepared for this transaction, or nil.
func (t *Tx) stmt(query string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	s := t.stmts.get(query)
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
