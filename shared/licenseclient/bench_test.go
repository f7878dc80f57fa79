package licenseclient_test

import (
	"context"
	"testing"
	"time"
)

// The client's round trip to the real API on loopback, every answer
// verified: activate (a held seat's renewal) and check past renew-after
// (a validate).
func BenchmarkClientActivate(b *testing.B) {
	s := startServer(b)
	c := newClient(b, s, s.url, b.TempDir(), nil)
	ctx := context.Background()
	key := s.f.Keys["roomy"]
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Activate(ctx, key, "bench-1"); !r.OK {
			b.Fatalf("%+v", r)
		}
	}
}

func BenchmarkClientValidate(b *testing.B) {
	s := startServer(b)
	clk := &clock{t: time.Now()}
	c := newClient(b, s, s.url, b.TempDir(), clk)
	ctx := context.Background()
	key := s.f.Keys["roomy"]
	r := c.Activate(ctx, key, "bench-1")
	if !r.OK {
		b.Fatalf("%+v", r)
	}
	clk.set(r.Lease.RenewAfter.Add(time.Second))
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Check(ctx, key, "bench-1"); !r.OK || r.FromLease {
			b.Fatalf("%+v", r)
		}
	}
}
