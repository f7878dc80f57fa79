package functions_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// objects lists the keys under prefix with their sizes.
func objects(t *testing.T, srv *s3test.Server, prefix string) map[string]int64 {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3test.Bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]int64{}
	for _, o := range out.Contents {
		objs[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	return objs
}

// The activate function, on the internet, only creates deltas: however
// many of its writes follow the snapshot (here more than a background
// publisher would let pass), it never writes the snapshot nor its history,
// which its role may not. The reminders function's {"snapshot": true}
// publishes it, once, and a cold start then begins there.
func TestActivateNeverPublishesASnapshot(t *testing.T) {
	const key = "e2e/caio_licenses.db"
	srv := s3test.StartVersity(t)
	store, svc, is := s3DatabaseOn(t, srv, key, 400)
	ctx := context.Background()
	pub, _ := svc.PublicKey(ctx)
	serverKey, _, err := svc.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	store.Close() // waits for any snapshot of its own

	head := func() *s3.HeadObjectOutput {
		out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before, history := head(), objects(t, srv, key+".snapshots/")
	base, _ := strconv.Atoi(before.Metadata["caio-seq"]) // "" before any snapshot: 0
	deltas := len(objects(t, srv, key+".log/"))

	env := srv.Env(key)
	env["CAIO_LICENSE_PUBLIC_KEY"] = licensekey.FormatPublicKey(pub.PublicKey)
	env["CAIO_SERVER_KEY"] = servercert.EncodePrivateKey(serverKey)
	env["CAIO_LICENSE_CACHE_DIR"] = t.TempDir()
	activate := startEmulator(t, bootstrap(t, "activate"), env)
	// Activations until their deltas add up to the database's size: a
	// writer publishing in the background would have published by then
	// (and the publisher below finds a snapshot due).
	activations, written, size := 0, int64(0), int64(1)
	var log map[string]int64
	for written < size {
		if activations == 300 {
			t.Fatalf("%d activations wrote %d bytes of deltas, less than the database's %d", activations, written, size)
		}
		for range 10 {
			ev := []byte(replaceInstance(string(sample(t, "activate", "http-api-activate", is.Key)), fmt.Sprintf("i%03d", activations)))
			if status, r := decodeAPI(t, activate, ev); status != 200 || r.Code != "VALID" {
				t.Fatalf("activation %d: %d %s", activations, status, r.Code)
			}
			activations++
		}
		log, written = objects(t, srv, key+".log/"), 0
		for k, n := range log {
			if k > fmt.Sprintf("%s.log/%020d", key, base) {
				written += n
			}
		}
		last, err := pagelog.Decode(srv.Object(t, fmt.Sprintf("%s.log/%020d", key, len(log))))
		if err != nil {
			t.Fatal(err)
		}
		size = int64(last.Pages) * int64(last.PageSize)
	}
	t.Logf("%d activations: %d bytes of deltas after the snapshot, database %d bytes", activations, written, size)
	if len(log) != deltas+activations {
		t.Fatalf("%d deltas after %d activations on %d: want one each", len(log), activations, deltas)
	}
	after := head()
	if aws.ToString(after.ETag) != aws.ToString(before.ETag) || after.Metadata["caio-seq"] != before.Metadata["caio-seq"] {
		t.Fatalf("the activate function replaced the snapshot: %v -> %v", before.Metadata, after.Metadata)
	}
	if h := objects(t, srv, key+".snapshots/"); len(h) != len(history) {
		t.Fatalf("the activate function wrote the snapshots' history: %v -> %v", history, h)
	}

	renv := srv.Env(key)
	renv["CAIO_LICENSE_CACHE_DIR"] = t.TempDir()
	reminders := startEmulator(t, bootstrap(t, "reminders"), renv)
	var out struct{ Snapshot s3store.SnapshotReport }
	reminders.invokeJSON(t, []byte(`{"snapshot": true}`), &out)
	seq := uint64(len(log))
	if out.Snapshot != (s3store.SnapshotReport{Seq: seq, SnapshotSeq: seq, Published: true}) {
		t.Fatalf(`reminders {"snapshot": true}: %+v, want the state at %d published`, out.Snapshot, seq)
	}
	if got := head().Metadata["caio-seq"]; got != fmt.Sprint(seq) {
		t.Fatalf("the snapshot is at %q after the publisher ran, want %d", got, seq)
	}
	if h := objects(t, srv, key+".snapshots/"); !slices.Contains(keys(h), fmt.Sprintf("%s.snapshots/%020d.db", key, seq)) {
		t.Fatalf("the published snapshot is not in the history: %v", h)
	}
	reminders.invokeJSON(t, []byte(`{"snapshot": true}`), &out)
	if out.Snapshot.Published {
		t.Fatalf("a second run published again with nothing new: %+v", out.Snapshot)
	}
	var refused struct{ Code, Detail string }
	reminders.invokeJSON(t, []byte(`{"snapshot": true, "days": 30}`), &refused)
	if refused.Code != "BAD_REQUEST" {
		t.Fatalf("snapshot with days: %+v, want BAD_REQUEST", refused)
	}
}

func keys(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
