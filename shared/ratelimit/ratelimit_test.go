package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/ratelimit"
)

func TestBucketPerKey(t *testing.T) {
	l := ratelimit.New(2, 3, 100)
	now := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("call %d within the burst refused", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%v, want refused with 500ms", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token did not come back at the rate")
	}
	if ok, _ := ratelimit.New(0, 0, 0).Allow("x", now); !ok {
		t.Fatal("a disabled limiter refused")
	}
}

// However many distinct keys call, memory stays bounded.
func TestMemoryIsBounded(t *testing.T) {
	l := ratelimit.New(1, 1, 1000)
	now := time.Now()
	for i := range 100_000 {
		l.Allow(fmt.Sprintf("203.0.%d.%d", i/256, i%256), now)
	}
	if n := l.Keys(); n != 1000 {
		t.Fatalf("%d buckets kept, want at most 1000", n)
	}
	// The most recent keys are the ones kept: a recent caller stays limited.
	if ok, _ := l.Allow(fmt.Sprintf("203.0.%d.%d", 99_999/256, 99_999%256), now); ok {
		t.Fatal("the most recent caller's bucket was dropped")
	}
}

func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(1e9, 1e9, 10000)
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		l.Allow(fmt.Sprint(i%20000), now)
	}
}
