package s3store_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// Attacks on the log in S3 (versitygw as the bucket): one deleted or
// planted object must never rewind the database silently, and nothing is
// written on top of what a reader refuses.

func deltaKeys(t *testing.T, srv *s3test.Server) []string {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3test.Bucket), Prefix: aws.String(key + ".log/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	slices.Sort(keys)
	return keys
}

func deleteObject(t testing.TB, srv *s3test.Server, k string) {
	t.Helper()
	if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String(k)}); err != nil {
		t.Fatal(err)
	}
}

func deltaName(seq uint64) string { return fmt.Sprintf("%s.log/%020d", key, seq) }

// refuses checks that err is DB_INVALID and says each of words.
func refuses(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	if licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("%s: %v, want DB_INVALID", what, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: %q does not say %q", what, err, w)
		}
	}
}

// logWith is a database with customers C1..Cn, one delta each after
// init-db, written by a store whose cache is dir.
func logWith(t *testing.T, srv *s3test.Server, dir string, n int) *s3store.Store {
	t.Helper()
	st := openIn(t, srv, dir)
	initDB(t, st)
	for i := 1; i <= n; i++ {
		if err := addCustomer(st, "C"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestDeletedMiddleDeltaIsAGapNeverAnEnd(t *testing.T) {
	srv := s3test.StartVersity(t)
	writer := logWith(t, srv, t.TempDir(), 4)
	keys := deltaKeys(t, srv)
	if len(keys) < 4 {
		t.Fatalf("deltas %v", keys)
	}
	deleteObject(t, srv, keys[len(keys)-3]) // C2's
	gap := strings.TrimLeft(strings.TrimPrefix(keys[len(keys)-3], key+".log/"), "0")

	reader := open(t, srv)
	err := reader.View(context.Background(), func(licensing.Tx) error { return nil })
	refuses(t, "a fresh reader", err, "delta "+gap+" ", "is missing while delta", "manage-licenses repair")
	if err := addCustomer(open(t, srv), "C9"); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("a fresh writer: %v, want DB_INVALID", err)
	}
	// Nor does the reader that met the gap write into it (its copy stops
	// before the gap, where a put-if-absent would succeed).
	if err := addCustomer(reader, "C8"); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("the reader that met the gap, writing: %v, want DB_INVALID", err)
	}
	if after := deltaKeys(t, srv); len(after) != len(keys)-1 || slices.Contains(after, keys[len(keys)-3]) {
		t.Fatalf("a delta was written into the gap: %v", after)
	}

	// The writer holds the state the missing delta led to: repair there
	// republishes it, and everyone reads on and writes on.
	rep, err := writer.Repair(context.Background())
	if err != nil || rep.Healthy || rep.SkippedTo != 0 || rep.Published != uint64(len(keys)+1) {
		t.Fatalf("repair on the writer: %+v, %v", rep, err)
	}
	if got := customers(t, open(t, srv)); strings.Join(got, ",") != "C1,C2,C3,C4" {
		t.Fatalf("a fresh reader after the repair: %v", got)
	}
	if got := customers(t, reader); strings.Join(got, ",") != "C1,C2,C3,C4" {
		t.Fatalf("the refused reader after the repair: %v", got)
	}
	if err := addCustomer(reader, "C5"); err != nil {
		t.Fatal(err)
	}
	if got := customers(t, writer); strings.Join(got, ",") != "C1,C2,C3,C4,C5" {
		t.Fatalf("the writer after the repair: %v", got)
	}
	if rep, err := open(t, srv).Repair(context.Background()); err != nil || !rep.Healthy {
		t.Fatalf("a second repair: %+v, %v; want nothing to repair", rep, err)
	}
}

// Without a copy that saw the missing delta, repair keeps what can be
// rebuilt and names what cannot.
func TestRepairFromAFreshMachineNamesWhatItSkips(t *testing.T) {
	srv := s3test.StartVersity(t)
	logWith(t, srv, t.TempDir(), 3)
	keys := deltaKeys(t, srv)
	deleteObject(t, srv, keys[len(keys)-2]) // C2's
	rep, err := open(t, srv).Repair(context.Background())
	last := uint64(len(keys))
	if err != nil || rep.Healthy || rep.SkippedFrom != last-1 || rep.SkippedTo != last || rep.Published != last+1 {
		t.Fatalf("repair: %+v, %v; want deltas %d to %d skipped", rep, err, last-1, last)
	}
	if got := customers(t, open(t, srv)); strings.Join(got, ",") != "C1" {
		t.Fatalf("after the repair: %v, want the state before the gap", got)
	}
}

// A planted delta far ahead is a gap too: refused at once, not a trap for
// the writer that reaches its number.
func TestPlantedFutureDeltaIsRefused(t *testing.T) {
	srv := s3test.StartVersity(t)
	logWith(t, srv, t.TempDir(), 2)
	keys := deltaKeys(t, srv)
	srv.PutObject(t, deltaName(1_000_000), srv.Object(t, keys[len(keys)-1]))
	err := open(t, srv).View(context.Background(), func(licensing.Tx) error { return nil })
	refuses(t, "a reader", err, "is missing while delta 1000000 exists")
	if err := addCustomer(open(t, srv), "C9"); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("a writer: %v", err)
	}
}

// A machine that confirmed a state refuses a log whose tail was deleted.
func TestDeletedTailIsRefusedWhereItWasConfirmed(t *testing.T) {
	srv := s3test.StartVersity(t)
	dir := t.TempDir()
	st := logWith(t, srv, dir, 3)
	st.Close() // remembers the state it confirmed
	keys := deltaKeys(t, srv)
	deleteObject(t, srv, keys[len(keys)-1])
	busy := openIn(t, srv, dir) // holds the slot with the copy
	defer busy.Close()
	other := openIn(t, srv, dir) // another process of this machine, from the snapshot
	err := other.View(context.Background(), func(licensing.Tx) error { return nil })
	refuses(t, "a process of the machine that confirmed the tail", err, "this machine confirmed", ".confirmed")
	if err := addCustomer(other, "C9"); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("a write on it: %v", err)
	}
	if after := deltaKeys(t, srv); len(after) != len(keys)-1 {
		t.Fatalf("written on top of the rewound log: %v", after)
	}
}

// relabel replaces the snapshot with the state at init-db (no customers),
// labelled as the state after delta seq, its checksum recomputed.
func relabel(t *testing.T, srv *s3test.Server, seq uint64) {
	t.Helper()
	old := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(old, srv.Object(t, key+".snapshots/"+fmt.Sprintf("%020d", 0)+".db"), 0o600); err != nil {
		t.Fatal(err)
	}
	pagelog.Normalize(old)
	sum, err := pagelog.Checksum(old)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(old)
	srv.PutObjectMeta(t, key, b, map[string]string{"caio-seq": strconv.FormatUint(seq, 10), "caio-checksum": strconv.FormatUint(sum, 16)})
}

func TestRelabelledOlderSnapshotIsRefused(t *testing.T) {
	srv := s3test.StartVersity(t)
	dir := t.TempDir()
	st := logWith(t, srv, dir, 3)
	n := uint64(len(deltaKeys(t, srv)))
	// The first delta after a whole-object database keeps that object in
	// the history as snapshot 0: the state an attacker relabels.
	if _, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String(key + ".snapshots/" + fmt.Sprintf("%020d", 0) + ".db")}); err != nil {
		t.Skipf("no snapshot 0 in the history to relabel: %v", err)
	}
	st.Close()

	// Labelled as the last delta's state: a fresh reader checks the
	// snapshot against that delta.
	relabel(t, srv, n)
	err := open(t, srv).View(context.Background(), func(licensing.Tx) error { return nil })
	refuses(t, "a fresh reader", err, "snapshot", fmt.Sprintf("after delta %d", n))

	// Labelled past the log: the machine that confirmed delta n knows the
	// log never reached it.
	relabel(t, srv, n+5)
	busy := openIn(t, srv, dir)
	defer busy.Close()
	err = openIn(t, srv, dir).View(context.Background(), func(licensing.Tx) error { return nil })
	refuses(t, "the machine that confirmed the log", err, fmt.Sprintf("after delta %d", n+5))
}

// A crafted delta that declares more than any delta of this database can
// hold (a deflate bomb behind a header asking for 128 GiB) is refused
// before its pages are inflated: the reader's memory stays flat.
func TestCraftedOversizeDeltaIsRefusedWithFlatMemory(t *testing.T) {
	srv := s3test.StartVersity(t)
	logWith(t, srv, t.TempDir(), 1)
	next := uint64(len(deltaKeys(t, srv)) + 1)
	var bomb bytes.Buffer
	w, _ := flate.NewWriter(&bomb, flate.BestSpeed)
	w.Write(make([]byte, 32<<20))
	w.Close()
	header, _ := json.Marshal(pagelog.Delta{Seq: next, PageSize: 65536, Pages: 1 << 21, Pre: 1, Post: 2, OpID: "op",
		Time: time.Unix(1700000000, 0).UTC(), Count: 1 << 21})
	b := binary.BigEndian.AppendUint32([]byte("CAIODLT1"), uint32(len(header)))
	b = append(append(b, header...), bomb.Bytes()...)
	sum := sha256.Sum256(b)
	srv.PutObject(t, deltaName(next), append(b, sum[:]...))

	reader := open(t, srv)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := reader.View(context.Background(), func(licensing.Tx) error { return nil })
	runtime.ReadMemStats(&after)
	refuses(t, "a reader", err, fmt.Sprintf("delta %d", next))
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("refusing a delta that declares 128 GiB allocated %d KB", grew>>10)
	if grew > 48<<20 {
		t.Fatalf("refusing the delta allocated %d MB", grew>>20)
	}
}
