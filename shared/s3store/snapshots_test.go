package s3store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// snapshotSeq is the caio-seq of the newest snapshot (0 for the one init-db made).
func snapshotSeq(t *testing.T, srv *s3test.Server) string {
	t.Helper()
	out, err := srv.Client().HeadObject(context.Background(), headInput(key))
	if err != nil {
		t.Fatal(err)
	}
	if seq := out.Metadata["caio-seq"]; seq != "" {
		return seq
	}
	return "0"
}

// history lists the sequence numbers in KEY.snapshots/.
func history(t *testing.T, srv *s3test.Server) []string {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3test.Bucket), Prefix: aws.String(key + ".snapshots/")})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, o := range out.Contents {
		name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(o.Key), key+".snapshots/"), ".db")
		seqs = append(seqs, strings.TrimLeft(name, "0")+"#")
	}
	return seqs
}

// Under SnapshotOnRequest writes only create deltas, however many follow
// the snapshot (not even the history's first snapshot); PublishSnapshot,
// called by another process, publishes the state when one is due and keeps
// the first snapshot in the history.
func TestOnRequestWritersOnlyCreateDeltas(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	ctx := context.Background()
	opt := s3store.Options{SnapshotEvery: 3, Snapshots: s3store.SnapshotOnRequest}
	writer := openOpt(t, srv, opt)
	initDB(t, writer)
	first := srv.Object(t, key)
	for i := range 10 {
		if err := addCustomer(writer, fmt.Sprintf("C%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	writer.Close()
	if seq := snapshotSeq(t, srv); seq != "0" {
		t.Fatalf("a writer under SnapshotOnRequest published the snapshot at %s", seq)
	}
	// Nor the history: the writer of delta 1 leaves the first snapshot's
	// copy to the publisher (the internet-facing role may not write there).
	if h := history(t, srv); len(h) != 0 {
		t.Fatalf("history %v: want none yet, the publisher keeps the first snapshot", h)
	}

	publisher := openOpt(t, srv, opt)
	rep, err := publisher.PublishSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep != (s3store.SnapshotReport{Seq: 10, SnapshotSeq: 10, Published: true}) {
		t.Fatalf("PublishSnapshot: %+v, want the state at 10 published", rep)
	}
	if seq := snapshotSeq(t, srv); seq != "10" {
		t.Fatalf("snapshot at %s after PublishSnapshot, want 10", seq)
	}
	if h := history(t, srv); !slices.Equal(h, []string{"#", "10#"}) {
		t.Fatalf("history %v: want the first snapshot and 10", h)
	}
	if got := srv.Object(t, key+".snapshots/00000000000000000000.db"); string(got) != string(first) {
		t.Fatal("the first snapshot kept in the history is not the one init-db made")
	}
	if got := customers(t, open(t, srv)); len(got) != 10 {
		t.Fatalf("a cold process sees %d customers, want 10", len(got))
	}

	// Nothing new: nothing due.
	if rep, err = publisher.PublishSnapshot(ctx); err != nil || rep.Published || rep.Seq != 10 {
		t.Fatalf("PublishSnapshot with nothing new: %+v, %v", rep, err)
	}
	// One delta, and a young snapshot: not due.
	writer = openOpt(t, srv, opt)
	addCustomer(writer, "D0")
	if rep, err = publisher.PublishSnapshot(ctx); err != nil || rep.Published || rep != (s3store.SnapshotReport{Seq: 11, SnapshotSeq: 10}) {
		t.Fatalf("PublishSnapshot one delta after a young snapshot: %+v, %v", rep, err)
	}
	// Three deltas (SnapshotEvery): due.
	addCustomer(writer, "D1")
	addCustomer(writer, "D2")
	if rep, err = publisher.PublishSnapshot(ctx); err != nil || rep != (s3store.SnapshotReport{Seq: 13, SnapshotSeq: 13, Published: true}) {
		t.Fatalf("PublishSnapshot three deltas on: %+v, %v", rep, err)
	}
}

// A snapshot older than a quarter of the history window is due with a
// single delta after it: no delta stays out of a snapshot long enough for
// lifecycle rules to expire it while a reader needs it.
func TestOldSnapshotIsDue(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	opt := s3store.Options{Snapshots: s3store.SnapshotOnRequest, History: 4 * time.Second}
	writer := openOpt(t, srv, opt)
	initDB(t, writer)
	time.Sleep(1100 * time.Millisecond)
	addCustomer(writer, "C0")
	rep, err := openOpt(t, srv, opt).PublishSnapshot(context.Background())
	if err != nil || rep != (s3store.SnapshotReport{Seq: 1, SnapshotSeq: 1, Published: true}) {
		t.Fatalf("PublishSnapshot one delta after an old snapshot: %+v, %v", rep, err)
	}
}

// With HistoryByLifecycle, PruneHistory leaves history to the bucket's
// rules: it removes nothing, and says so.
func TestPruneLeftToLifecycle(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	opt := s3store.Options{SnapshotEvery: 2, History: 2 * time.Second}
	st := openOpt(t, srv, opt)
	initDB(t, st)
	for i := range 6 {
		addCustomer(st, fmt.Sprintf("A%d", i))
	}
	st.Close()
	time.Sleep(2100 * time.Millisecond)
	opt.HistoryByLifecycle = true
	rep, err := openOpt(t, srv, opt).PruneHistory(context.Background())
	if err != nil || !rep.LeftToLifecycle || rep.DeltasRemoved != 0 || rep.SnapshotsRemoved != 0 {
		t.Fatalf("PruneHistory left to lifecycle: %+v, %v", rep, err)
	}
	if _, err := srv.Client().HeadObject(context.Background(), headInput(deltaKey(1))); err != nil {
		t.Fatalf("delta 1 was removed: %v", err)
	}
}
