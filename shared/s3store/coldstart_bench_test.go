package s3store_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// BenchmarkColdStart measures a cold start (an empty cache: the snapshot,
// then everything after it) at 10, 100 and 1,000 deltas since the
// snapshot, through a proxy that delays every request by 20 ms (a distant
// S3, as a proxy for one): its time, requests and sequential round trips.
// "merged" reads the log as writers leave it; "deltas-only" with the
// merged deltas removed, as a reader before them did.
func BenchmarkColdStart(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("deltas=%d", n), func(b *testing.B) {
			srv := s3test.StartGofakes3(b)
			snapshotThenDeltas(b, srv, 0, n)
			proxy := s3test.NewProxy(b, srv)
			proxy.Latency = 20 * time.Millisecond
			b.Run("merged", func(b *testing.B) { benchColdStart(b, proxy) })
			for _, k := range mergedNames(b, srv) {
				deleteObject(b, srv, k)
			}
			b.Run("deltas-only", func(b *testing.B) { benchColdStart(b, proxy) })
		})
	}
}

func benchColdStart(b *testing.B, proxy *s3test.Proxy) {
	proxy.SetEnv(b, key)
	var requests int64
	trips := 0
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		proxy.Reset()
		b.StartTimer()
		st := coldStart(b, dir)
		b.StopTimer()
		requests += proxy.Requests.Load()
		trips = max(trips, proxy.RoundTrips())
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(requests)/float64(b.N), "s3-req/op")
	b.ReportMetric(float64(trips), "round-trips")
}

// coldStart opens the database with an empty cache in dir and reads it.
func coldStart(b *testing.B, dir string) *s3store.Store {
	st, err := s3store.OpenWith(context.Background(), "s3://"+s3test.Bucket+"/"+key, s3store.Options{CacheDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	if err := viewErr(st); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkColdStartMemory measures the peak memory of a cold start of a
// database of 100,000 activation rows (27 MB) followed by 1,000 deltas:
// the Go heap (live objects and garbage not yet swept, sampled every
// millisecond) at its highest above where it was. The Lambda functions
// run with 512 MB (activate) and 1,024 MB (template.yaml MemorySize).
func BenchmarkColdStartMemory(b *testing.B) {
	srv := s3test.StartGofakes3(b)
	snapshotThenDeltas(b, srv, 100_000, 1000)
	srv.SetEnv(b, key)
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		runtime.GC()
		peak := watchHeap()
		b.StartTimer()
		st := coldStart(b, dir)
		b.StopTimer()
		heap = max(heap, peak())
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
}

// watchHeap samples the Go heap every millisecond until the returned
// function is called, which reports its highest above the start.
func watchHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base, high := read(), uint64(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			high = max(high, read())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return max(high, base) - base
	}
}
