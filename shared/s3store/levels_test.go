package s3store_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// Merged deltas: a cold start reads the snapshot, lists, and fetches a
// plan of at most about 50 objects, whatever the number of deltas since
// the snapshot; a merged delta that is missing, forged or damaged never
// changes what a reader ends with.

// Cold-start bounds (issue 23): round trips and requests.
const (
	maxColdTrips    = 3
	maxColdRequests = 70
)

// snapshotThenDeltas is a database of rows activations whose snapshot is
// at a delta after init-db, followed by n deltas (one customer each,
// D0001..), written the way the Lambda functions write (SnapshotOnRequest,
// merged deltas in the background of the writes). It returns the
// snapshot's number once the writer is closed (its merges done).
func snapshotThenDeltas(t testing.TB, srv *s3test.Server, rows, n int) (snapSeq uint64, last string) {
	t.Helper()
	ctx := context.Background()
	srv.SetEnv(t, key)
	writer, err := s3store.OpenWith(ctx, "s3://"+s3test.Bucket+"/"+key, s3store.Options{CacheDir: t.TempDir(), Snapshots: s3store.SnapshotOnRequest})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if _, err := writer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	seed(t, writer, rows)
	publisher, err := s3store.OpenWith(ctx, "s3://"+s3test.Bucket+"/"+key, s3store.Options{CacheDir: t.TempDir(), SnapshotEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := publisher.PublishSnapshot(ctx)
	publisher.Close()
	if err != nil || !rep.Published {
		t.Fatalf("publishing the snapshot: %+v, %v", rep, err)
	}
	// The deltas after the snapshot, so far (init-db may write more than
	// one): the rest makes n.
	since := 0
	for _, k := range listAll(t, srv, key+".log/") {
		if seq, _ := strconv.ParseUint(k[len(k)-20:], 10, 64); seq > rep.SnapshotSeq {
			since++
		}
	}
	for i := 1; i <= n-since; i++ {
		last = fmt.Sprintf("D%04d", i)
		if err := addCustomer(writer, last); err != nil {
			t.Fatal(err)
		}
	}
	return rep.SnapshotSeq, last
}

func mergedNames(t testing.TB, srv *s3test.Server) []string {
	t.Helper()
	return listAll(t, srv, key+".log.merged/")
}

func listAll(t testing.TB, srv *s3test.Server, prefix string) []string {
	var out []string
	for _, o := range listObjects(t, srv, prefix) {
		out = append(out, aws.ToString(o.Key))
	}
	return out
}

// listObjects lists the bucket's objects under prefix, every page.
func listObjects(t testing.TB, srv *s3test.Server, prefix string) []types.Object {
	t.Helper()
	var out []types.Object
	p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(s3test.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Contents...)
	}
	return out
}

func mergedName(first, last uint64) string {
	return fmt.Sprintf("%s.log.merged/%020d-%020d", key, first, last)
}

// coldRead opens a store with an empty cache through proxy and reads the
// customers, counting what it cost.
func coldRead(t *testing.T, proxy *s3test.Proxy) (ids []string, requests int64, trips int) {
	t.Helper()
	st := openIn(t, proxy.Server, t.TempDir())
	proxy.Reset()
	if err := viewErr(st); err != nil {
		t.Fatalf("cold start: %v", err)
	}
	requests, trips = proxy.Requests.Load(), proxy.RoundTrips()
	return customers(t, st), requests, trips
}

// At 1,000 deltas since the snapshot a cold start costs at most 3
// sequential round trips and 70 requests, and ends where the deltas do.
func TestColdStartIsBoundedWhateverTheDeltas(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	snap, last := snapshotThenDeltas(t, srv, 0, 1000)
	if got := len(listAll(t, srv, key+".log/")); uint64(got) != snap+1000 {
		t.Fatalf("snapshot at %d, %d deltas in all: not 1,000 since it", snap, got)
	}
	if n := len(mergedNames(t, srv)); n < 1000/16 {
		t.Fatalf("%d merged deltas after 1,000 deltas, want at least %d", n, 1000/16)
	}
	proxy := s3test.NewProxy(t, srv)
	// Requests sent together overlap, even on a busy machine where some
	// leave a few milliseconds after the others: the proxy counts a round
	// trip for a request that arrives after another was answered.
	proxy.Latency = 100 * time.Millisecond
	ids, requests, trips := coldRead(t, proxy)
	t.Logf("cold start at 1,000 deltas: %d requests, %d round trips", requests, trips)
	if trips > maxColdTrips || requests > maxColdRequests {
		t.Errorf("cold start: %d round trips and %d requests, want at most %d and %d", trips, requests, maxColdTrips, maxColdRequests)
	}
	if ids[len(ids)-1] != last {
		t.Fatalf("cold start read %d customers, the last %q, want %q", len(ids), ids[len(ids)-1], last)
	}
	// The deltas alone give the same state: a reader warm before them.
	plain, _, _ := coldRead(t, proxy)
	if !slices.Equal(plain, ids) {
		t.Fatal("two cold starts disagree")
	}
}

// The publisher makes the merged deltas the writers left missing, and a
// cold start without any reads the deltas alone (more requests, the same
// state).
func TestPublisherFillsMissingMergedDeltas(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	snapshotThenDeltas(t, srv, 20_000, 300)
	all := mergedNames(t, srv)
	for _, k := range all {
		deleteObject(t, srv, k)
	}
	proxy := s3test.NewProxy(t, srv)
	ids, requests, _ := coldRead(t, proxy)
	if len(ids) < 300 || requests < 300 {
		t.Fatalf("without merged deltas: %d customers in %d requests", len(ids), requests)
	}
	pub := openOpt(t, srv, s3store.Options{})
	rep, err := pub.PublishSnapshot(context.Background())
	if err != nil || rep.Merged == 0 {
		t.Fatalf("publisher: %+v, %v", rep, err)
	}
	// Every span of 16 (and of 256) up to the log's end.
	got := mergedNames(t, srv)
	for _, k := range all {
		if !slices.Contains(got, k) {
			t.Fatalf("the publisher did not make %s", k)
		}
	}
	if len(got) < 300/16 {
		t.Fatalf("the publisher made %d merged deltas for 300 deltas", len(got))
	}
	ids2, requests2, _ := coldRead(t, proxy)
	if !slices.Equal(ids2, ids) || requests2 > maxColdRequests {
		t.Fatalf("after the publisher: %d customers in %d requests", len(ids2), requests2)
	}
}

// A plain delta deleted under a merged delta is a gap, as it always was:
// the listing of the deltas is read whatever the plan.
func TestDeletedDeltaUnderAMergedOneIsAGap(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	snap, _ := snapshotThenDeltas(t, srv, 0, 100)
	deleteObject(t, srv, deltaName(snap+40))
	refuses(t, "a cold reader", viewErr(open(t, srv)), "is missing while delta")
}

// A warm writer merges the deltas it committed or applied from memory: a
// merge costs its PUT, no GET of a delta.
func TestWarmWriterMergesFromMemory(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	writer := openOpt(t, proxy.Server, s3store.Options{Snapshots: s3store.SnapshotOnRequest})
	initDB(t, writer)
	var deltaGets, mergedPuts atomic.Int64
	proxy.Decide = func(r *http.Request) s3test.Fault {
		switch {
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, ".log/"):
			deltaGets.Add(1)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, ".log.merged/"):
			mergedPuts.Add(1)
		}
		return s3test.Pass
	}
	for i := range 40 {
		if err := addCustomer(writer, fmt.Sprintf("W%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	writer.Close()
	if mergedPuts.Load() < 2 || deltaGets.Load() != 0 {
		t.Fatalf("40 writes: %d merged deltas put, %d deltas fetched; want 2 or more, and none", mergedPuts.Load(), deltaGets.Load())
	}
}

// Past a thousand deltas since the snapshot (a second page of the
// listing), with the writers' last merges missing: the reader fetches the
// deltas past the 16 it fetched ahead in a fourth round trip, and ends
// where the writer did; a delta deleted there is a gap.
func TestColdStartPastAPageWithMergesLagging(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	snap, last := snapshotThenDeltas(t, srv, 0, 1100)
	end := snap + 1100
	for _, k := range mergedNames(t, srv) {
		if m := strings.Split(strings.TrimPrefix(k, key+".log.merged/"), "-"); m[1] > fmt.Sprintf("%020d", end-64) {
			deleteObject(t, srv, k)
		}
	}
	proxy := s3test.NewProxy(t, srv)
	ids, requests, trips := coldRead(t, proxy)
	t.Logf("cold start at 1,100 deltas, the last 64 not merged: %d requests, %d round trips", requests, trips)
	if ids[len(ids)-1] != last || requests > 2*maxColdRequests {
		t.Fatalf("cold start: %d customers (the last %q, want %q) in %d requests", len(ids), ids[len(ids)-1], last, requests)
	}
	deleteObject(t, srv, deltaName(end-10))
	refuses(t, "a cold reader past a deleted delta", viewErr(open(t, srv)), "is missing while delta")
}
