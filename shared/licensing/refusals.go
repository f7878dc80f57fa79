package licensing

import (
	"context"
	"sync"
	"time"
)

// Refusals per day and code, for the operator report. A refused call
// writes nothing (a flood of refusals must not grow the database or cost
// S3 writes): this process counts them in memory, and the counts ride
// along with its next write that happens anyway (a seat taken, renewed or
// freed). Counts of a process that stops before such a write are lost:
// these are statistics, best effort; the Refusals metric is exact.

// RefusalCount is the refusals of one code on one day (UTC, YYYY-MM-DD).
type RefusalCount struct {
	Day   string `json:"day"`
	Code  Code   `json:"code"`
	Count int    `json:"count"`
}

type refusalKey struct {
	day  string
	code Code
}

type refusalTally struct {
	mu sync.Mutex
	n  map[refusalKey]int
}

// counted are the codes that a seat request can be refused with.
var counted = map[Code]bool{CodeInvalidKey: true, CodeExpired: true, CodeSuspended: true, CodeRevoked: true,
	CodeTooManyInstances: true, CodeTooManyActivations: true, CodeInstanceIDRequired: true, CodeBadRequest: true, CodeNotFound: true}

// noteRefusal counts err if it refuses a seat request.
func (s *Service) noteRefusal(err error) {
	code := ErrorCode(err)
	if err == nil || !counted[code] {
		return
	}
	t := &s.refusals
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[refusalKey]int{}
	}
	t.n[refusalKey{s.now().UTC().Format(time.DateOnly), code}]++
}

// flushRefusals adds the pending counts in tx (a unit of work that writes
// anyway) and returns them, to be subtracted once it commits.
func (s *Service) flushRefusals(tx Tx) (map[refusalKey]int, error) {
	t := &s.refusals
	t.mu.Lock()
	if len(t.n) == 0 {
		t.mu.Unlock()
		return nil, nil
	}
	snap := make(map[refusalKey]int, len(t.n))
	for k, v := range t.n {
		snap[k] = v
	}
	t.mu.Unlock()
	for k, v := range snap {
		if err := tx.AddRefusals(k.day, k.code, v); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// flushed forgets counts that a committed unit of work recorded.
func (s *Service) flushed(snap map[refusalKey]int) {
	t := &s.refusals
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range snap {
		if t.n[k] -= v; t.n[k] <= 0 {
			delete(t.n, k)
		}
	}
}

// Refusals lists the recorded refusal counts since.
func (s *Service) Refusals(ctx context.Context, since time.Time) ([]RefusalCount, error) {
	var out []RefusalCount
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.RefusalCounts(since)
		return err
	})
	return out, err
}
