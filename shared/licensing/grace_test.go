package licensing_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// A license with grace keeps working after it expires, with outcome GRACE,
// to the last second of its grace, and is expired from the next; its
// leases never outlive the grace, and stats count it in grace meanwhile.
func TestGraceBoundaries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A 3-day lease, longer than the 1-day grace.
	issued := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays, r.GraceDays = 5, 1 })
	key := issued.Key
	expires := issued.License.ExpiresAt
	graceEnd := expires.Add(24 * time.Hour)
	if !issued.License.GraceEndsAt().Equal(graceEnd) || issued.License.GraceDays != 1 {
		t.Fatalf("license %+v", issued.License)
	}
	stats := func() licensing.Stats {
		t.Helper()
		st, err := e.svc.Stats(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	at := func(when time.Time) (licensing.Check, error) {
		t.Helper()
		e.clock.set(when)
		return e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "node-1"})
	}

	// The last second before expiry: valid, and the lease already runs
	// into the grace, no further.
	c, err := at(expires.Add(-time.Second))
	if err != nil || c.Outcome(c.At) != licensing.CodeValid {
		t.Fatalf("before expiry: %v %v", c.Outcome(c.At), err)
	}
	if !c.Activation.LeaseExpiresAt.Equal(graceEnd) {
		t.Fatalf("lease until %v, want the grace's end %v", c.Activation.LeaseExpiresAt, graceEnd)
	}
	if st := stats(); st.Active != 1 || st.InGrace != 0 {
		t.Fatalf("before expiry: stats %+v", st)
	}
	// The first second of the grace, and its last: GRACE, with a warning
	// that names the grace's end; a lease that says so.
	for _, when := range []time.Time{expires, graceEnd.Add(-time.Second)} {
		c, err := at(when)
		if err != nil || c.Outcome(c.At) != licensing.CodeGrace {
			t.Fatalf("at %v: %v %v", when, c.Outcome(c.At), err)
		}
		if w := c.Warning(c.At); !strings.Contains(w, graceEnd.Format(time.RFC3339)) {
			t.Fatalf("the warning does not name the grace's end: %q", w)
		}
		l, ok := c.Lease(lease.Online, key)
		if !ok || l.Version() != 2 || !l.InGrace(when) || !l.GraceEndsAt.Equal(graceEnd) || !l.LicenseEndsAt.Equal(expires) || l.ExpiresAt.After(graceEnd) {
			t.Fatalf("at %v: lease %+v", when, l)
		}
		if st := stats(); st.InGrace != 1 || st.Active != 0 || st.Expired != 0 {
			t.Fatalf("in grace: stats %+v", st)
		}
		lics, err := e.svc.Licenses(ctx, "", licensing.StatusGrace)
		if err != nil || len(lics) != 1 || lics[0].EffectiveStatus != licensing.StatusGrace {
			t.Fatalf("listing in grace: %+v %v", lics, err)
		}
	}
	// The grace's end: expired, online, and the message says both dates.
	_, err = at(graceEnd)
	wantCode(t, err, licensing.CodeExpired)
	if err != nil && !strings.Contains(err.Error(), "its grace ended on "+graceEnd.Format(time.RFC3339)) {
		t.Fatalf("the refusal does not say the grace ended: %v", err)
	}
	if st := stats(); st.Expired != 1 || st.InGrace != 0 {
		t.Fatalf("after the grace: stats %+v", st)
	}
}

// Without grace, nothing changes: expired at the expiry, and leases are
// version 1, as clients from before grace read them.
func TestNoGraceIsTodaysBehaviour(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 2 })
	c, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: issued.Key, InstanceID: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := c.Lease(lease.Online, issued.Key); l.Version() != 1 {
		t.Fatalf("a lease with no grace nor overage is version %d", l.Version())
	}
	e.clock.set(issued.License.ExpiresAt)
	_, err = e.svc.Activate(ctx, licensing.SeatRequest{Key: issued.Key, InstanceID: "node-1"})
	wantCode(t, err, licensing.CodeExpired)
}

// An offline lease follows the same rule: it runs into the grace, never
// past it, and says where the license ends and the grace.
func TestOfflineLeaseCarriesTheGrace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays, r.GraceDays = 2, 3 })
	off, err := e.svc.IssueOfflineLease(ctx, licensing.SeatRequest{Key: issued.Key, InstanceID: "air-1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	graceEnd := issued.License.ExpiresAt.Add(3 * 24 * time.Hour)
	l, err := lease.Parse(off.Token)
	if err != nil || l.Version() != 2 || !l.ExpiresAt.Equal(graceEnd) || !l.GraceEndsAt.Equal(graceEnd) || !l.LicenseEndsAt.Equal(issued.License.ExpiresAt) {
		t.Fatalf("offline lease %+v %v", l, err)
	}
}

// Grace and overage are bounded, on generate and on update.
func TestGraceAndOverageBounds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, r := range []licensing.GenerateRequest{{GraceDays: -1}, {GraceDays: licensing.MaxGraceDays + 1}, {OveragePercent: -1}, {OveragePercent: licensing.MaxOveragePercent + 1}} {
		_, err := e.svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30,
			MaxInstances: 2, MaxServices: 1, MaxRequestsPerDay: 1, GraceDays: r.GraceDays, OveragePercent: r.OveragePercent})
		wantCode(t, err, licensing.CodeBadRequest)
	}
	issued := e.generate(nil)
	bad := int64(licensing.MaxGraceDays + 1)
	_, err := e.svc.UpdateTerms(ctx, issued.License.ID, licensing.TermsChange{GraceDays: &bad})
	wantCode(t, err, licensing.CodeBadRequest)
	grace, overage := int64(7), int64(50)
	up, err := e.svc.UpdateTerms(ctx, issued.License.ID, licensing.TermsChange{GraceDays: &grace, OveragePercent: &overage})
	if err != nil || up.License.GraceDays != 7 || up.License.OveragePercent != 50 || up.License.SeatCap() != 3 {
		t.Fatalf("update: %+v %v", up.License, err)
	}
	again, err := e.svc.UpdateTerms(ctx, issued.License.ID, licensing.TermsChange{GraceDays: &grace})
	if err != nil || !again.Unchanged {
		t.Fatalf("the same grace again: %+v %v", again, err)
	}
}

// A grace shortened after a lease was issued: the lease the server answers
// with never runs past the grace it states.
func TestShortenedGraceCapsTheLeaseAnswered(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays, r.GraceDays = 5, 30 })
	e.clock.set(issued.License.ExpiresAt.Add(-time.Hour))
	if err := e.activate(issued.Key, "node-1"); err != nil {
		t.Fatal(err)
	}
	one := int64(1)
	up, err := e.svc.UpdateTerms(ctx, issued.License.ID, licensing.TermsChange{GraceDays: &one})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(2 * time.Hour) // in the grace, no renewal due
	c, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: up.Key, InstanceID: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := c.Lease(lease.Online, up.Key)
	if !ok || l.ExpiresAt.After(l.GraceEndsAt) || !l.GraceEndsAt.Equal(issued.License.ExpiresAt.Add(24*time.Hour)) || l.RenewAfter.After(l.ExpiresAt) {
		t.Fatalf("lease %+v", l)
	}
	if _, err := lease.Sign(l, ed25519.NewKeyFromSeed(make([]byte, 32))); err != nil {
		t.Fatal(err)
	}
}

// An older key of a renewed license is in its own grace after its own
// expiry (GRACE, with a lease that ends with that grace); after it, it
// validates online as earlier keys do, with no lease to run on.
func TestOlderKeyOfARenewedLicense(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays, r.GraceDays = 5, 1 })
	later := issued.License.ExpiresAt.Add(30 * 24 * time.Hour)
	if _, err := e.svc.UpdateTerms(ctx, issued.License.ID, licensing.TermsChange{ExpiresAt: &later}); err != nil {
		t.Fatal(err)
	}
	e.clock.set(issued.License.ExpiresAt.Add(time.Hour))
	c, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: issued.Key, InstanceID: "node-1"})
	if err != nil || c.Outcome(c.At) != licensing.CodeGrace || !c.Activation.LeaseExpiresAt.Equal(issued.License.ExpiresAt.Add(24*time.Hour)) {
		t.Fatalf("the old key in its grace: %v %v", c.Outcome(c.At), err)
	}
	e.clock.set(issued.License.ExpiresAt.Add(24 * time.Hour))
	c, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: issued.Key})
	if err != nil || c.Outcome(c.At) != licensing.CodeValid {
		t.Fatalf("the old key after its grace: %v %v", c.Outcome(c.At), err)
	}
}

// A lease change says what bounds it, in the units the operator used: at
// least a minute, at most the license's remaining life (named, with its
// end), and none for a license already expired (in its grace), which is
// to be renewed first: its state refuses it, not the value.
func TestLeaseChangeSaysWhatBoundsIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	issued := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays, r.GraceDays = 2, 7 })
	id := issued.License.ID
	for lease, want := range map[int64]string{30: "at least 1 minute (got 30s)", 3 * 24 * 3600: "no longer than the license's remaining life, 48h0m0s until "} {
		_, err := e.svc.UpdateTerms(ctx, id, licensing.TermsChange{LeaseSeconds: &lease})
		if licensing.ErrorCode(err) != licensing.CodeBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("lease %d s: %v", lease, err)
		}
	}
	e.clock.set(issued.License.ExpiresAt.Add(time.Hour))
	hours := int64(2 * 3600)
	_, err := e.svc.UpdateTerms(ctx, id, licensing.TermsChange{LeaseSeconds: &hours})
	if licensing.ErrorCode(err) != licensing.CodeExpired || !strings.Contains(err.Error(), "renew it first (renew-license)") {
		t.Fatalf("a license in its grace: %v", err)
	}
}
