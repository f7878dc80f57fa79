package sqlitestore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

func eventCount(t *testing.T, s licensing.Store) int {
	t.Helper()
	var n int
	err := s.View(context.Background(), func(tx licensing.Tx) error {
		es, err := tx.Events(licensing.EventFilter{})
		n = len(es)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A statement of the seat operations (run on the transaction's connection
// directly) after the transaction's context ended neither runs nor
// commits on its own: database/sql rolled the transaction back.
func TestSeatStatementAfterContextEndsIsRefused(t *testing.T) {
	s, _ := create(t)
	now := time.Now().UTC().Truncate(time.Second)
	before := eventCount(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	err := s.Update(ctx, func(tx licensing.Tx) error {
		if err := tx.AppendEvent(licensing.Event{At: now, Kind: "test", Actor: "t"}); err != nil {
			return err
		}
		cancel()
		time.Sleep(10 * time.Millisecond) // database/sql rolls back as the context ends
		err := tx.AppendEvent(licensing.Event{At: now, Kind: "test", Actor: "t"})
		if err == nil {
			t.Error("a write after the context ended succeeded")
		}
		return err
	})
	if err == nil {
		t.Fatal("the unit of work committed")
	}
	if n := eventCount(t, s); n != before {
		t.Fatalf("%d events after a cancelled unit of work, want %d", n, before)
	}
}

// Statements prepared on each connection are finalised as it closes: the
// store closes cleanly after writes on several connections at once, and a
// rolled-back unit of work leaves nothing.
func TestSeatStatementsOnManyConnections(t *testing.T) {
	s, _ := create(t)
	now := time.Now().UTC().Truncate(time.Second)
	before := eventCount(t, s)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				err := s.Update(context.Background(), func(tx licensing.Tx) error {
					if err := tx.AppendEvent(licensing.Event{At: now, Kind: "test", Actor: fmt.Sprintf("w%d-%d", i, j)}); err != nil {
						return err
					}
					if j%2 == 1 {
						return licensing.Errorf(licensing.CodeBadRequest, "rolled back")
					}
					return nil
				})
				if (err != nil) != (j%2 == 1) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := eventCount(t, s); n != before+8*5 {
		t.Fatalf("%d events, want %d", n, before+8*5)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
