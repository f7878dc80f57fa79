package licensing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The abuse: one key activates fresh instance ids in a loop whose seats
// are freed (here by the operator; an instance's own deactivation keeps
// its seat until its lease ends), growing the database. New seats per
// rolling 24 hours are limited; a refusal writes nothing; holders
// renewing their seat are never limited.
func TestChurnLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 1 }).Key // default limit max(10, 2) = 10
	for i := range 10 {
		id := fmt.Sprintf("churn-%d", i)
		if err := e.activate(key, id); err != nil {
			t.Fatalf("activation %d: %v", i, err)
		}
		if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: id, Immediate: true}); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(time.Minute)
	}
	before := e.eventCount()
	err := e.activate(key, "churn-10")
	wantCode(t, err, licensing.CodeTooManyActivations)
	if wait := licensing.RetryAfter(err); wait != 24*time.Hour-10*time.Minute {
		t.Fatalf("retry after %v, want the oldest grant's 24 hours to run out (23h50m)", wait)
	}
	if e.eventCount() != before {
		t.Fatal("a refused activation wrote an event")
	}
	if acts, _ := e.svc.Activations(ctx, key); len(acts) != 10 {
		t.Fatalf("%d activation rows: the refusal wrote one", len(acts))
	}
	// Re-activating an instance that holds its seat is not a new seat.
	e.clock.advance(time.Hour)
	wantCode(t, e.activate(key, "churn-9"), licensing.CodeTooManyActivations) // deactivated: a new seat
	// Once the oldest grant leaves the window, one more fits.
	e.clock.advance(23*time.Hour - 9*time.Minute)
	if err := e.activate(key, "churn-10"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	for range 20 {
		if err := e.activate(key, "churn-10"); err != nil {
			t.Fatalf("the holder renewing its seat was limited: %v", err)
		}
	}
	// Per license, settable.
	strict := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 50; r.MaxActivationsPerDay = 2 }).Key
	e.activate(strict, "a")
	e.activate(strict, "b")
	wantCode(t, e.activate(strict, "c"), licensing.CodeTooManyActivations)
	if is := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 50 }); is.License.ActivationsPerDay() != 100 {
		t.Fatalf("default for 50 instances: %d, want 100", is.License.ActivationsPerDay())
	}
}

// Two stores on one file race for new seats under a churn limit: exactly
// the limit wins.
func TestChurnLimitUnderContention(t *testing.T) {
	e := newEnv(t)
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 100; r.MaxActivationsPerDay = 7 }).Key
	won := e.race(key, 20, "i", licensing.CodeTooManyActivations)
	if won != 7 {
		t.Fatalf("%d new seats, want exactly 7", won)
	}
}
