package licensing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// seatTimeoutLicense is a license of one seat with a 3-minute lease and a
// 1-minute seat timeout.
func seatTimeoutLicense(e *env) string {
	return e.generate(func(r *licensing.GenerateRequest) {
		r.MaxInstances, r.LeaseSeconds, r.SeatTimeoutSeconds = 1, 180, 60
	}).Key
}

// A holder that stops renewing loses its seat after the seat timeout, to
// the second, though its lease runs on; when it comes back it is refused,
// and takes a seat again once one is free.
func TestSeatTimeoutFreesTheSeatBeforeTheLeaseEnds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := seatTimeoutLicense(e)
	t0 := e.clock.now()
	a, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Activation.LeaseExpiresAt.Equal(t0.Add(3*time.Minute)) || !a.Activation.LeaseRenewAfter().Equal(t0.Add(30*time.Second)) {
		t.Fatalf("lease until %v, renew after %v: want 3 minutes, and half the seat timeout", a.Activation.LeaseExpiresAt, a.Activation.LeaseRenewAfter())
	}
	seats := func() licensing.SeatCounts {
		t.Helper()
		st, err := e.svc.Stats(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		return st.Seats
	}
	// The last second before the timeout: a's seat is held.
	e.clock.advance(59 * time.Second)
	wantCode(t, e.activate(key, "b"), licensing.CodeTooManyInstances)
	if s := seats(); s != (licensing.SeatCounts{Live: 1}) {
		t.Fatalf("at 59 s: seats %+v", s)
	}
	// The first second after: it is free, and a's lease still runs.
	e.clock.advance(time.Second)
	if s := seats(); s != (licensing.SeatCounts{Expired: 1}) {
		t.Fatalf("at 60 s: seats %+v", s)
	}
	acts, _ := e.svc.Activations(ctx, key)
	if len(acts) != 1 || acts[0].State(e.clock.now()) != licensing.SeatExpiredLease || !e.clock.now().Before(*acts[0].LeaseExpiresAt) {
		t.Fatalf("a at 60 s: %+v", acts)
	}
	if err := e.activate(key, "b"); err != nil {
		t.Fatalf("the timed-out seat was not taken: %v", err)
	}
	if s := seats(); s != (licensing.SeatCounts{Live: 1, Expired: 1}) {
		t.Fatalf("after b: seats %+v", s)
	}
	// a comes back within its lease: its seat is taken.
	_, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "a"})
	wantCode(t, err, licensing.CodeTooManyInstances)
	if err != nil && !strings.Contains(err.Error(), "1m0s after its holder last renewed it") {
		t.Fatalf("the refusal does not say when seats free themselves: %v", err)
	}
	// b gives its seat back itself: it stays taken until b's seat would
	// time out (before b's lease ends), to the second.
	b, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: "b"})
	if err != nil || !b.Changed {
		t.Fatal(err)
	}
	e.clock.advance(59 * time.Second)
	_, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "a"})
	wantCode(t, err, licensing.CodeTooManyInstances)
	acts, _ = e.svc.Activations(ctx, key)
	if st := acts[1].State(e.clock.now()); acts[1].InstanceID != "b" || st != licensing.SeatReleasing {
		t.Fatalf("b 59 s after deactivating: %s", st)
	}
	e.clock.advance(time.Second)
	if s := seats(); s != (licensing.SeatCounts{Expired: 1, Deactivated: 1}) {
		t.Fatalf("b's seat timed out: seats %+v", s)
	}
	// A seat is free: a takes one again.
	if _, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "a"}); err != nil {
		t.Fatalf("a on a free seat: %v", err)
	}
}

// A holder renewing at renew-after keeps its seat for ever; the lease's
// renew-after is the earlier of half the lease and half the seat timeout.
func TestSeatTimeoutRenewAfter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		lease, timeout int64
		want           time.Duration
	}{
		{3600, 600, 5 * time.Minute},   // the timeout's half is earlier
		{3600, 3600, 30 * time.Minute}, // the same
		{3600, 0, 30 * time.Minute},    // no timeout: the lease's half
		{180, 60, 30 * time.Second},
	} {
		key := e.generate(func(r *licensing.GenerateRequest) { r.LeaseSeconds, r.SeatTimeoutSeconds = c.lease, c.timeout }).Key
		res, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i"})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Activation.LeaseRenewAfter().Sub(*res.Activation.LeaseIssuedAt); got != c.want {
			t.Errorf("lease %d s, timeout %d s: renew after %v, want %v", c.lease, c.timeout, got, c.want)
		}
	}
	// Near the license's end the lease is cut short, and its half is the
	// earlier rule.
	key := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays, r.SeatTimeoutSeconds = 1, 4*3600 }).Key
	e.clock.advance(23 * time.Hour)
	res, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Activation.LeaseRenewAfter().Sub(*res.Activation.LeaseIssuedAt); got != 30*time.Minute {
		t.Errorf("a one-hour lease under a 4-hour timeout: renew after %v, want 30m", got)
	}

	// A live holder, renewing when told, never loses its seat.
	key = seatTimeoutLicense(e)
	res, err = e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "live"})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		e.clock.advance(res.Activation.LeaseRenewAfter().Sub(e.clock.now()))
		if res, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "live"}); err != nil || !res.Renewed {
			t.Fatalf("renewal at renew-after: renewed %v, %v", res.Renewed, err)
		}
		wantCode(t, e.activate(key, "other"), licensing.CodeTooManyInstances)
	}
	// Before renew-after, validate answers with the lease held.
	e.clock.advance(29 * time.Second)
	if again, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "live"}); err != nil || again.Renewed ||
		!again.Activation.LeaseIssuedAt.Equal(*res.Activation.LeaseIssuedAt) {
		t.Fatalf("validate before renew-after renewed: %v", err)
	}
}

// An offline lease cannot be renewed: the seat timeout never frees its seat.
func TestSeatTimeoutSparesOfflineLeases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := seatTimeoutLicense(e)
	if _, err := e.svc.IssueOfflineLease(ctx, licensing.SeatRequest{Key: key, InstanceID: "plant-7"}, 1); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(2 * time.Hour)
	wantCode(t, e.activate(key, "online"), licensing.CodeTooManyInstances)
	st, _ := e.svc.Stats(ctx, 1)
	if st.Seats != (licensing.SeatCounts{Live: 1, Offline: 1}) {
		t.Fatalf("seats %+v", st.Seats)
	}
}

// Every count of seats (taking one, stats, listings, the report) and each
// activation's state agree at every second around the boundaries, whatever
// mix of leases, timeouts and deactivations.
func TestSeatCountsFollowOneRule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) {
		r.MaxInstances, r.LeaseSeconds, r.SeatTimeoutSeconds = 50, 300, 120
	}).Key
	plain := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances, r.LeaseSeconds = 50, 180 }).Key
	for i := range 12 {
		for _, k := range []string{key, plain} {
			id := fmt.Sprintf("i-%d", i)
			if err := e.activate(k, id); err != nil {
				t.Fatal(err)
			}
			switch i % 4 {
			case 1: // gives its seat back itself
				if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: k, InstanceID: id}); err != nil {
					t.Fatal(err)
				}
			case 2: // the operator frees it
				if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: k, InstanceID: id, Immediate: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if i == 5 {
			if _, err := e.svc.IssueOfflineLease(ctx, licensing.SeatRequest{Key: key, InstanceID: "plant"}, 1); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.advance(17 * time.Second)
	}
	for range 40 {
		now := e.clock.now()
		acts, err := e.svc.Activations(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		want := licensing.SeatCounts{}
		perLicense := map[string]int{}
		for _, a := range acts {
			switch a.State(now) {
			case licensing.SeatLive, licensing.SeatReleasing:
				want.Live++
				perLicense[a.LicenseID]++
				if a.Kind == licensing.KindOffline {
					want.Offline++
				}
			case licensing.SeatExpiredLease:
				want.Expired++
			case licensing.SeatDeactivated:
				want.Deactivated++
			}
		}
		st, err := e.svc.Stats(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if st.Seats != want {
			t.Fatalf("at %v: stats %+v, states say %+v", now, st.Seats, want)
		}
		views, _ := e.svc.Licenses(ctx, "", "")
		for _, v := range views {
			if v.ActiveInstances != perLicense[v.ID] {
				t.Fatalf("at %v: license %s lists %d seats, states say %d", now, v.ID, v.ActiveInstances, perLicense[v.ID])
			}
		}
		rep, err := e.svc.Report(ctx, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Customers) != 1 || rep.Customers[0].Used != want.Live {
			t.Fatalf("at %v: the report's seats %+v, states say %d", now, rep.Customers, want.Live)
		}
		e.clock.advance(7 * time.Second)
	}
}

func TestSeatTimeoutBounds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []struct{ lease, timeout int64 }{{3600, 59}, {3600, 3601}, {3600, -60}, {0, licensing.DefaultLeaseSeconds + 60}} {
		_, err := e.svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 31,
			MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1, LeaseSeconds: c.lease, SeatTimeoutSeconds: c.timeout})
		wantCode(t, err, licensing.CodeBadRequest)
		if !strings.Contains(err.Error(), "seat-timeout-minutes") {
			t.Errorf("%+v: %v does not name the flag", c, err)
		}
	}
	// The default is the lease; a timeout may equal it.
	is := e.generate(func(r *licensing.GenerateRequest) { r.LeaseSeconds = 3600 })
	if is.License.SeatTimeoutSeconds != 0 || is.License.SeatTimeout() != time.Hour {
		t.Fatalf("default seat timeout %d s, in force %v", is.License.SeatTimeoutSeconds, is.License.SeatTimeout())
	}
	is = e.generate(func(r *licensing.GenerateRequest) { r.LeaseSeconds, r.SeatTimeoutSeconds = 3600, 3600 })
	if is.License.SeatTimeout() != time.Hour {
		t.Fatalf("seat timeout %v", is.License.SeatTimeout())
	}

	// update-license: a timeout within the lease it goes with; a lease
	// shorter than the timeout in force is refused, not clamped.
	key := e.generate(func(r *licensing.GenerateRequest) { r.LeaseSeconds, r.SeatTimeoutSeconds = 3600, 1800 }).Key
	i64 := func(v int64) *int64 { return &v }
	_, err := e.svc.UpdateTerms(ctx, key, licensing.TermsChange{LeaseSeconds: i64(1200)})
	wantCode(t, err, licensing.CodeBadRequest)
	if !strings.Contains(err.Error(), "seat timeout") {
		t.Fatalf("refusal does not say why: %v", err)
	}
	_, err = e.svc.UpdateTerms(ctx, key, licensing.TermsChange{SeatTimeoutSeconds: i64(3660)})
	wantCode(t, err, licensing.CodeBadRequest)
	up, err := e.svc.UpdateTerms(ctx, key, licensing.TermsChange{LeaseSeconds: i64(1200), SeatTimeoutSeconds: i64(600)})
	if err != nil || up.License.SeatTimeout() != 10*time.Minute || up.License.LeaseSeconds != 1200 {
		t.Fatalf("lease and timeout together: %+v %v", up.License, err)
	}
	up, err = e.svc.UpdateTerms(ctx, key, licensing.TermsChange{SeatTimeoutSeconds: i64(0)})
	if err != nil || up.License.SeatTimeoutSeconds != 0 || up.License.SeatTimeout() != 20*time.Minute {
		t.Fatalf("back to the lease: %+v %v", up.License, err)
	}
	// With the default timeout the lease changes freely.
	if _, err := e.svc.UpdateTerms(ctx, key, licensing.TermsChange{LeaseSeconds: i64(120)}); err != nil {
		t.Fatal(err)
	}
	if up, err := e.svc.UpdateTerms(ctx, key, licensing.TermsChange{SeatTimeoutSeconds: i64(0)}); err != nil || !up.Unchanged {
		t.Fatalf("the same timeout again: %+v %v", up, err)
	}
}

// A timeout set on a license applies at once to the seats held: one whose
// holder last renewed longer ago is free.
func TestSeatTimeoutChangeAppliesToSeatsHeld(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances, r.LeaseSeconds = 1, 3600 }).Key
	if err := e.activate(key, "a"); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(20 * time.Minute)
	v := int64(600)
	if _, err := e.svc.UpdateTerms(ctx, key, licensing.TermsChange{SeatTimeoutSeconds: &v}); err != nil {
		t.Fatal(err)
	}
	if err := e.activate(key, "b"); err != nil {
		t.Fatalf("a's seat, renewed 20 minutes ago under a new 10-minute timeout: %v", err)
	}
}
