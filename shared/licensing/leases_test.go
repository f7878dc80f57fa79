package licensing_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// A dead instance's seat frees itself when its lease runs out: the next
// activation of any instance takes it, with no clean-up job.
func TestExpiredLeaseFreesTheSeat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 1; r.LeaseSeconds = 60 }).Key
	if err := e.activate(key, "dead"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.activate(key, "new"), licensing.CodeTooManyInstances)
	e.clock.advance(59 * time.Second)
	wantCode(t, e.activate(key, "new"), licensing.CodeTooManyInstances)
	e.clock.advance(time.Second)
	if err := e.activate(key, "new"); err != nil {
		t.Fatalf("the expired lease's seat was not taken: %v", err)
	}
	// The dead instance comes back: its seat is taken.
	_, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "dead"})
	wantCode(t, err, licensing.CodeTooManyInstances)
	wantCode(t, e.activate(key, "dead"), licensing.CodeTooManyInstances)
	st, _ := e.svc.Stats(ctx, 30)
	if st.Seats != (licensing.SeatCounts{Live: 1, Expired: 1}) || st.ActiveInstances != 1 {
		t.Fatalf("seats %+v, active %d", st.Seats, st.ActiveInstances)
	}
	acts, _ := e.svc.Activations(ctx, key)
	states := map[string]string{}
	for _, a := range acts {
		states[a.InstanceID] = a.State(e.clock.now())
	}
	if states["dead"] != licensing.SeatExpiredLease || states["new"] != licensing.SeatLive {
		t.Fatalf("states %v", states)
	}
	// An instance whose lease ran out but whose seat is still free comes back.
	e.clock.advance(2 * time.Minute)
	if _, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "dead"}); err != nil {
		t.Fatalf("re-activation on a free seat: %v", err)
	}
}

// Validate renews a lease once past renew-after (half the lease) and not
// before; the lease never outlives the license; suspended licenses stop
// renewing.
func TestLeaseRenewal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) { r.LeaseSeconds = 3600; r.ExpiresDays = 1 }).Key
	check, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	if err != nil {
		t.Fatal(err)
	}
	a := check.Activation
	if got := a.LeaseExpiresAt.Sub(*a.LeaseIssuedAt); got != time.Hour || a.LeaseRenewAfter() != a.LeaseIssuedAt.Add(30*time.Minute) {
		t.Fatalf("lease %v..%v renew %v", a.LeaseIssuedAt, a.LeaseExpiresAt, a.LeaseRenewAfter())
	}
	e.clock.advance(29 * time.Minute)
	res, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	if err != nil || res.Changed || !res.Activation.LeaseExpiresAt.Equal(*a.LeaseExpiresAt) {
		t.Fatalf("validate before renew-after: changed=%v %v", res.Changed, err)
	}
	e.clock.advance(2 * time.Minute)
	res, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	if err != nil || !res.Changed || !res.Activation.LeaseExpiresAt.Equal(e.clock.now().Add(time.Hour)) {
		t.Fatalf("validate after renew-after: changed=%v %v %+v", res.Changed, err, res.Activation)
	}
	// Near the license's end the lease stops at the expiry.
	e.clock.advance(23*time.Hour + 30*time.Minute - 31*time.Minute)
	res, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	if err != nil || res.Activation.LeaseExpiresAt.After(check.License.ExpiresAt) {
		t.Fatalf("lease past the license's expiry: %v %v", res.Activation.LeaseExpiresAt, err)
	}
	// Suspended: validation says so, nothing is renewed.
	if _, err := e.svc.SetStatus(ctx, key, licensing.StatusSuspended, ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	wantCode(t, err, licensing.CodeSuspended)
}

func TestLeaseLengthBounds(t *testing.T) {
	e := newEnv(t)
	for _, secs := range []int64{59, 31*86400 + 1, -60} {
		_, err := e.svc.Generate(context.Background(), licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 31,
			MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1, LeaseSeconds: secs})
		wantCode(t, err, licensing.CodeBadRequest)
	}
	is := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 1 })
	if is.License.LeaseSeconds != 86400 {
		t.Fatalf("a one-day license's default lease: %d s, want the day", is.License.LeaseSeconds)
	}
	if is := e.generate(nil); is.License.LeaseSeconds != licensing.DefaultLeaseSeconds {
		t.Fatalf("default lease %d", is.License.LeaseSeconds)
	}
}

// Two stores on one file race for seats while leases expire: exactly max
// instances hold a seat afterwards.
func TestSeatsStayExactWhileLeasesExpire(t *testing.T) {
	e := newEnv(t)
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 3; r.LeaseSeconds = 60 }).Key
	for i := range 3 {
		if err := e.activate(key, fmt.Sprintf("old-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.advance(61 * time.Second)
	won := e.race(key, 12, "new", licensing.CodeTooManyInstances)
	st, _ := e.svc.Stats(context.Background(), 30)
	if won != 3 || st.Seats.Live != 3 || st.Seats.Expired != 3 {
		t.Fatalf("won %d, seats %+v: want 3 live, 3 expired", won, st.Seats)
	}
}

// Rotation of server keys: a new key is certified while the old one is
// valid, and each finds its own certificate.
func TestServerKeyRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old, _, err := e.svc.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(20 * 24 * time.Hour)
	fresh, _, err := e.svc.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]ed25519.PrivateKey{"old": old, "new": fresh} {
		c, err := e.svc.ServerCertificate(ctx, k.Public().(ed25519.PublicKey))
		if err != nil || c.KeyID != licensekey.KeyID(k.Public().(ed25519.PublicKey)) {
			t.Fatalf("%s key: %+v %v", name, c, err)
		}
	}
	e.clock.advance(11 * 24 * time.Hour) // the old one lapsed
	_, err = e.svc.ServerCertificate(ctx, old.Public().(ed25519.PublicKey))
	wantCode(t, err, licensing.CodeConfig)
	if _, err := e.svc.ServerCertificate(ctx, fresh.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	// Certifying needs the secret.
	_, _, err = e.service("").CertifyServerKey(ctx, 30)
	wantCode(t, err, licensing.CodeSecretRequired)
}
