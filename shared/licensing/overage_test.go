package licensing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Under an overage allowance the seats above max instances answer
// OVERAGE, up to max x (1 + P/100) rounded down, and the one after is
// refused; stats count them. When a seat within max instances comes free,
// an overage seat moves into it at its next renewal.
func TestOverageBoundaries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// 5 instances and 30%: 6.5 seats, rounded down to 6.
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances, r.OveragePercent = 5, 30 }).Key
	activate := func(id string) (licensing.Check, error) {
		return e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: id})
	}
	for i := range 5 {
		c, err := activate(fmt.Sprintf("node-%d", i))
		if err != nil || c.Outcome(c.At) != licensing.CodeValid || c.Activation.Overage {
			t.Fatalf("seat %d of 5: %v %v", i+1, c.Outcome(c.At), err)
		}
	}
	// The last overage seat.
	c, err := activate("node-5")
	if err != nil || c.Outcome(c.At) != licensing.CodeOverage {
		t.Fatalf("the sixth seat: %v %v", c.Outcome(c.At), err)
	}
	if w := c.Warning(c.At); !strings.Contains(w, "above the license's 5 max instances") {
		t.Fatalf("warning %q", w)
	}
	if l, _ := c.Lease(lease.Online, key); l.Version() != 2 || !l.Overage || l.InGrace(c.At) {
		t.Fatalf("the overage seat's lease %+v", l)
	}
	// The one after.
	_, err = activate("node-6")
	wantCode(t, err, licensing.CodeTooManyInstances)
	if err != nil && !strings.Contains(err.Error(), "all 6 instance seats (5 and 30% overage)") {
		t.Fatalf("the refusal does not say the overage: %v", err)
	}
	st, err := e.svc.Stats(ctx, 1)
	if err != nil || st.Seats.Live != 6 || st.Seats.Overage != 1 {
		t.Fatalf("stats %+v %v", st.Seats, err)
	}
	// A renewal of the overage seat while the others hold theirs: still
	// overage.
	e.clock.advance(37 * time.Hour) // past renew-after, within the lease
	renew := func(id string) licensing.Check {
		t.Helper()
		c, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: id})
		if err != nil {
			t.Fatalf("renew %s: %v", id, err)
		}
		return c
	}
	for i := range 5 {
		renew(fmt.Sprintf("node-%d", i))
	}
	if c := renew("node-5"); c.Outcome(c.At) != licensing.CodeOverage {
		t.Fatalf("renewed overage seat: %v", c.Outcome(c.At))
	}
	// The operator frees a seat within max instances: at its next renewal
	// the overage seat is within max instances, and says VALID.
	if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: "node-0", Immediate: true}); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(37 * time.Hour)
	for i := 1; i < 5; i++ {
		renew(fmt.Sprintf("node-%d", i))
	}
	if c := renew("node-5"); c.Outcome(c.At) != licensing.CodeValid || c.Activation.Overage {
		t.Fatalf("after a seat came free: %v", c.Outcome(c.At))
	}
	if st, _ := e.svc.Stats(ctx, 1); st.Seats.Live != 5 || st.Seats.Overage != 0 {
		t.Fatalf("stats after %+v", st.Seats)
	}
	// A new instance now takes the overage seat, not a normal one.
	if c, err := activate("node-7"); err != nil || c.Outcome(c.At) != licensing.CodeOverage {
		t.Fatalf("the next seat: %v %v", c.Outcome(c.At), err)
	}
}

// Without an allowance, and where it rounds to nothing, the seat after max
// instances is refused, as before.
func TestOverageRoundsDown(t *testing.T) {
	for _, tc := range []struct {
		max, percent int64
		seats        int
	}{{2, 0, 2}, {2, 20, 2}, {2, 50, 3}, {3, 50, 4}, {10, 100, 20}} {
		e := newEnv(t)
		key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances, r.OveragePercent = tc.max, tc.percent }).Key
		for i := range tc.seats {
			if err := e.activate(key, fmt.Sprintf("n-%d", i)); err != nil {
				t.Fatalf("%d and %d%%: seat %d: %v", tc.max, tc.percent, i+1, err)
			}
		}
		wantCode(t, e.activate(key, "one-more"), licensing.CodeTooManyInstances)
	}
}

// Exactly the cap under concurrency: as many racing instances as seats
// and more, and never one above max x (1 + P/100).
func TestOverageCapUnderContention(t *testing.T) {
	e := newEnv(t)
	key := e.generate(func(r *licensing.GenerateRequest) {
		r.MaxInstances, r.OveragePercent, r.MaxActivationsPerDay = 4, 50, 100
	}).Key
	if got := e.race(key, 12, "racer", licensing.CodeTooManyInstances); got != 6 {
		t.Fatalf("%d seats taken by 12 racers, want 6 (4 and 50%%)", got)
	}
	st, err := e.svc.Stats(context.Background(), 1)
	if err != nil || st.Seats.Live != 6 || st.Seats.Overage != 2 {
		t.Fatalf("stats %+v %v", st.Seats, err)
	}
}

// Lowering max instances under an allowance: the seats held keep renewing
// (no holder is cut off), but as they renew, seats become overage seats
// until exactly max instances are not, and stats count them.
func TestLoweredMaxInstancesMarksOverageSeats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances, r.OveragePercent = 10, 20 })
	for i := range 10 {
		if err := e.activate(issued.Key, fmt.Sprintf("n-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	five := int64(5)
	if _, err := e.svc.UpdateTerms(ctx, issued.License.ID, licensing.TermsChange{MaxInstances: &five}); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(37 * time.Hour) // past renew-after
	over := 0
	for i := range 10 {
		c, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: issued.Key, InstanceID: fmt.Sprintf("n-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if c.Outcome(c.At) == licensing.CodeOverage {
			over++
		}
	}
	st, err := e.svc.Stats(ctx, 1)
	if err != nil || over != 5 || st.Seats.Live != 10 || st.Seats.Overage != 5 {
		t.Fatalf("after lowering max instances to 5: %d answered OVERAGE, stats %+v %v", over, st.Seats, err)
	}
	wantCode(t, e.activate(issued.Key, "new"), licensing.CodeTooManyInstances)
}
