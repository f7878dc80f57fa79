package licenseclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// generateAt issues a license of CUST-001 on the server's clock.
func (s *server) generateAt(t *testing.T, mutate func(*licensing.GenerateRequest)) licensing.Issued {
	t.Helper()
	r := licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 1, MaxInstances: 2, MaxServices: 1, MaxRequestsPerDay: 1}
	mutate(&r)
	is, err := s.svc.Generate(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// Grace, online and on the lease alike: VALID to the last second before
// the license expires, GRACE from its first second to the last of the
// grace (also with the server out of reach, on the lease), EXPIRED from
// the grace's end, whatever the lease held.
func TestGraceOnline(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := startServerAt(t, clk)
	ctx := context.Background()
	is := s.generateAt(t, func(r *licensing.GenerateRequest) { r.GraceDays = 2 })
	expires, graceEnd := is.License.ExpiresAt, is.License.ExpiresAt.Add(48*time.Hour)
	dir := t.TempDir()
	c := newClient(t, s, s.url, dir, clk)
	offline := newClient(t, s, "http://127.0.0.1:1", dir, clk) // the same instance, cut off

	want(t, "activate", c.Activate(ctx, is.Key, "node-1"), true, "VALID")
	clk.set(expires.Add(-time.Second))
	want(t, "the last second before expiry", c.Check(ctx, is.Key, "node-1"), true, "VALID")
	clk.set(expires)
	r := c.Check(ctx, is.Key, "node-1")
	want(t, "the first second of grace", r, true, "GRACE")
	if r.Lease == nil || !r.Lease.GraceEndsAt.Equal(graceEnd) || !strings.Contains(r.Detail, graceEnd.Format(time.RFC3339)) {
		t.Fatalf("in grace: %+v", r)
	}
	// A new instance, with no lease yet, asks the server and runs in grace.
	want(t, "a new instance in grace", newClient(t, s, s.url, t.TempDir(), clk).Activate(ctx, is.Key, "node-3"), true, "GRACE")
	// Cut off from the server, past renew-after: the lease carries the
	// grace, and says GRACE.
	clk.set(r.Lease.RenewAfter.Add(time.Second))
	r = offline.Check(ctx, is.Key, "node-1")
	want(t, "in grace, server away", r, true, "GRACE")
	if !r.FromLease {
		t.Fatalf("in grace, server away, not from the lease: %+v", r)
	}
	clk.set(graceEnd.Add(-time.Second))
	want(t, "the last second of grace", c.Check(ctx, is.Key, "node-1"), true, "GRACE")
	// The grace's end: whatever lease the instance holds, and whether or
	// not it can reach the server.
	clk.set(graceEnd)
	want(t, "the grace's end, server away", offline.Check(ctx, is.Key, "node-1"), false, "EXPIRED")
	want(t, "the grace's end", c.Check(ctx, is.Key, "node-1"), false, "EXPIRED")
	want(t, "a new instance after the grace", c.Activate(ctx, is.Key, "node-2"), false, "EXPIRED")
}

// A license without grace: an expired key is refused even with the server
// out of reach, as before.
func TestNoGraceExpiresAtTheExpiry(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := startServerAt(t, clk)
	is := s.generateAt(t, func(*licensing.GenerateRequest) {})
	c := newClient(t, s, s.url, t.TempDir(), clk)
	want(t, "activate", c.Activate(context.Background(), is.Key, "node-1"), true, "VALID")
	clk.set(is.License.ExpiresAt)
	want(t, "at the expiry", c.Check(context.Background(), is.Key, "node-1"), false, "EXPIRED")
	offline := newClient(t, s, "", t.TempDir(), clk)
	want(t, "at the expiry, no server", offline.Check(context.Background(), is.Key, "node-1"), false, "EXPIRED")
}

// An offline lease file applies the same rule with the public key alone.
func TestGraceOfflineLeaseFile(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := startServerAt(t, clk)
	is := s.generateAt(t, func(r *licensing.GenerateRequest) { r.GraceDays = 2 })
	off, err := s.svc.IssueOfflineLease(context.Background(), licensing.SeatRequest{Key: is.Key, InstanceID: "air-1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := json.Marshal(off)
	expires, graceEnd := is.License.ExpiresAt, is.License.ExpiresAt.Add(48*time.Hour)
	c := newClient(t, s, "", t.TempDir(), clk)
	for _, tc := range []struct {
		at   time.Time
		ok   bool
		code string
	}{{expires.Add(-time.Second), true, "VALID"}, {expires, true, "GRACE"}, {graceEnd.Add(-time.Second), true, "GRACE"}, {graceEnd, false, "EXPIRED"}} {
		clk.set(tc.at)
		want(t, "offline at "+tc.at.Format(time.RFC3339), c.CheckOffline(is.Key, "air-1", file), tc.ok, tc.code)
	}
}

// Overage: the seat above max instances runs, warned, online and on its
// lease; the one after the allowance is refused.
func TestOverageSeats(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := startServerAt(t, clk)
	ctx := context.Background()
	// 2 instances and 50%: 3 seats.
	is := s.generateAt(t, func(r *licensing.GenerateRequest) { r.ExpiresDays, r.OveragePercent = 30, 50 })
	var clients []*licenseclient.Client
	for i := range 4 {
		dir := t.TempDir()
		clients = append(clients, newClient(t, s, s.url, dir, clk))
		r := clients[i].Activate(ctx, is.Key, fmt.Sprintf("node-%d", i))
		switch i {
		case 0, 1:
			want(t, "a seat within max instances", r, true, "VALID")
		case 2:
			want(t, "the overage seat", r, true, "OVERAGE")
			if r.Lease == nil || !r.Lease.Overage || !strings.Contains(r.Detail, "overage") {
				t.Fatalf("overage: %+v", r)
			}
			// On its lease, with the server away, it is still told so.
			clk.set(r.Lease.RenewAfter)
			cut := newClient(t, s, "http://127.0.0.1:1", dir, clk)
			want(t, "the overage seat, server away", cut.Check(ctx, is.Key, "node-2"), true, "OVERAGE")
		case 3:
			want(t, "the seat after the allowance", r, false, "TOO_MANY_INSTANCES")
		}
	}
}

// An offline lease file says OVERAGE for a seat above max instances, with
// the public key alone; the seat after the allowance gets no lease file.
func TestOverageOfflineLeaseFile(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := startServerAt(t, clk)
	ctx := context.Background()
	// 1 instance and 100%: 2 seats.
	is := s.generateAt(t, func(r *licensing.GenerateRequest) { r.ExpiresDays, r.MaxInstances, r.OveragePercent = 30, 1, 100 })
	c := newClient(t, s, "", t.TempDir(), clk)
	for i, want := range []string{"VALID", "OVERAGE", "TOO_MANY_INSTANCES"} {
		id := fmt.Sprintf("air-%d", i)
		off, err := s.svc.IssueOfflineLease(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: id}, 10)
		if want == "TOO_MANY_INSTANCES" {
			if licensing.ErrorCode(err) != licensing.CodeTooManyInstances {
				t.Fatalf("the seat after the allowance: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		file, _ := json.Marshal(off)
		r := c.CheckOffline(is.Key, id, file)
		if !r.OK || r.Code != want || r.Lease.Overage != (want == "OVERAGE") {
			t.Fatalf("offline seat %d: %+v, want %s", i+1, r, want)
		}
	}
}
