package s3store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

const key = "prod/caio_licenses.db"

func open(t *testing.T, srv *s3test.Server) *s3store.Store {
	t.Helper()
	srv.SetEnv(t, key)
	st, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func initDB(t *testing.T, st *s3store.Store) {
	t.Helper()
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func addCustomer(st licensing.Store, id string) error {
	svc := licensing.New(licensing.Config{Store: st, Actor: "test"})
	_, err := svc.AddCustomer(context.Background(), id, "Customer "+id, "")
	return err
}

func customers(t *testing.T, st licensing.Store) []string {
	t.Helper()
	cs, err := licensing.New(licensing.Config{Store: st}).Customers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestInitDBCreatesOnceAndReadsAreConditional(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	st := open(t, proxy.Server)
	ctx := context.Background()
	if err := st.View(ctx, func(licensing.Tx) error { return nil }); licensing.ErrorCode(err) != licensing.CodeDBNotFound || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("before init-db: %v", err)
	}
	initDB(t, st)
	first := srv.Object(t, key)
	if from, err := st.Migrate(ctx); err != nil || from == 0 {
		t.Fatalf("second init-db: from %d, %v", from, err)
	}
	if string(srv.Object(t, key)) != string(first) {
		t.Fatal("init-db on an existing, current database changed it")
	}
	if err := addCustomer(st, "C1"); err != nil {
		t.Fatal(err)
	}
	// Another client's write is seen by listing the log and fetching its
	// delta; a current reader spends one request (the listing, empty) to
	// learn so. (A listing, not a 404 on the next number: it also shows a
	// delta missing while later ones exist.)
	other := open(t, proxy.Server)
	if err := addCustomer(other, "C2"); err != nil {
		t.Fatal(err)
	}
	proxy.Reset()
	if got := customers(t, st); strings.Join(got, ",") != "C1,C2" {
		t.Fatalf("customers %v", got)
	}
	if proxy.Gets.Load() != 2 || proxy.NotFounds.Load() != 0 || proxy.BytesDown.Load() > 16<<10 {
		t.Fatalf("read after one change should list once and fetch one small delta: %s", proxy.Counts())
	}
	proxy.Reset()
	customers(t, st)
	if proxy.Requests.Load() != 1 || proxy.NotFounds.Load() != 0 {
		t.Fatalf("read of an unchanged database should be one request: %s", proxy.Counts())
	}
	// An uncontended write from a warm process: the delta's put-if-absent
	// alone (it fails if anything came after the state the write ran on).
	proxy.Reset()
	if err := addCustomer(st, "C3"); err != nil {
		t.Fatal(err)
	}
	if proxy.Requests.Load() != 1 || proxy.Puts.Load() != 1 {
		t.Fatalf("a warm write should take one request: %s", proxy.Counts())
	}
	// A unit of work that changes nothing uploads nothing.
	proxy.Reset()
	if err := st.Update(ctx, func(tx licensing.Tx) error { _, err := tx.Customers(); return err }); err != nil {
		t.Fatal(err)
	}
	if proxy.Puts.Load() != 0 {
		t.Fatalf("a no-op write uploaded: %s", proxy.Counts())
	}
}

// Many writers, one object: no update is lost.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	initDB(t, open(t, srv))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for w := range 4 {
		st := open(t, srv)
		wg.Go(func() {
			for i := range 5 {
				if err := addCustomer(st, fmt.Sprintf("W%d-%d", w, i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := customers(t, open(t, srv)); len(got) != 20 {
		t.Fatalf("%d customers, want 20: %v", len(got), got)
	}
}

// The write whose answer is lost is recognised as applied, not failed as a
// duplicate nor applied twice.
func TestLostAnswerOfAnAppliedPutIsRecognised(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	st := open(t, proxy.Server)
	initDB(t, st)
	lost := 0
	proxy.Decide = func(r *http.Request) s3test.Fault {
		if r.Method == http.MethodPut && lost == 0 {
			lost++
			return s3test.LoseAnswer
		}
		return s3test.Pass
	}
	if err := addCustomer(st, "C1"); err != nil {
		t.Fatalf("the write landed but was reported as %v", err)
	}
	if lost != 1 {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	evs, err := licensing.New(licensing.Config{Store: open(t, srv)}).Events(context.Background(), licensing.EventFilter{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v %v: the write must be applied exactly once", evs, err)
	}
}

// Faults between client and server: every operation either reports
// success and its effect is present, or reports failure — BUSY means not
// applied; UNKNOWN_OUTCOME means it may have been.
func TestFaults(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	st := open(t, proxy.Server)
	initDB(t, st)
	rng := rand.New(rand.NewPCG(1, 2))
	faults := map[s3test.Fault]int{}
	proxy.Decide = func(*http.Request) s3test.Fault {
		var f s3test.Fault
		switch n := rng.IntN(100); {
		case n < 10:
			f = s3test.Error503
		case n < 20:
			f = s3test.Drop
		case n < 25:
			f = s3test.Slow
		case n < 40:
			f = s3test.LoseAnswer
		}
		faults[f]++
		return f
	}
	outcome := map[string]licensing.Code{}
	for i := range 40 {
		id := fmt.Sprintf("C%02d", i)
		outcome[id] = licensing.ErrorCode(addCustomer(st, id))
	}
	proxy.Decide = nil
	present := map[string]bool{}
	for _, id := range customers(t, open(t, srv)) {
		present[id] = true
	}
	succeeded := 0
	for id, code := range outcome {
		switch code {
		case "":
			succeeded++
			if !present[id] {
				t.Errorf("%s reported success but is missing", id)
			}
		case licensing.CodeBusy:
			if present[id] {
				t.Errorf("%s reported BUSY (not applied) but is present", id)
			}
		case licensing.CodeUnknownOutcome:
		default:
			t.Errorf("%s: unexpected outcome %s", id, code)
		}
	}
	if succeeded < 20 || faults[s3test.LoseAnswer] == 0 || faults[s3test.Drop] == 0 || faults[s3test.Error503] == 0 {
		t.Fatalf("only %d of 40 succeeded; faults injected %v", succeeded, faults)
	}
	t.Logf("%d of 40 succeeded through faults %v", succeeded, faults)
}

func TestBadConfiguration(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	ctx := context.Background()
	for _, uri := range []string{"s3://", "s3://b", "s3://licenses", "s3://licenses/", "s3://licenses/dir/", "s3:/licenses/x.db"} {
		if _, err := s3store.Open(ctx, uri, t.TempDir()); licensing.ErrorCode(err) != licensing.CodeConfig || !strings.Contains(err.Error(), "s3://BUCKET/") {
			t.Errorf("%q: %v", uri, err)
		}
	}
	srv.SetEnv(t, key)
	missing, err := s3store.Open(ctx, "s3://no-such-bucket/x.db", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Migrate(ctx); licensing.ErrorCode(err) != licensing.CodeConfig || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := s3store.Open(ctx, "s3://licenses/x.db", t.TempDir()); licensing.ErrorCode(err) != licensing.CodeConfig || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials: %v", err)
	}
}

// Credentials S3 does not accept (an unknown access key, a wrong secret)
// are named as such, for a database that exists: not as a database to
// create (versitygw answers an unknown key with a 404), nor as a policy to
// change, and nothing is written.
func TestRejectedCredentials(t *testing.T) {
	srv := s3test.StartVersity(t)
	st := open(t, srv)
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := addCustomer(st, "C1"); err != nil {
		t.Fatal(err)
	}
	objects := bucketKeys(t, srv)
	for name, env := range map[string][2]string{"unknown access key": {"AKIAUNKNOWN", srv.SecretKey}, "wrong secret": {srv.AccessKey, "wrong-secret"}} {
		t.Setenv("AWS_ACCESS_KEY_ID", env[0])
		t.Setenv("AWS_SECRET_ACCESS_KEY", env[1])
		st, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		err = addCustomer(st, "C2")
		st.Close()
		if licensing.ErrorCode(err) != licensing.CodeConfig || !strings.Contains(err.Error(), "AWS credentials rejected") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := bucketKeys(t, srv); !slices.Equal(got, objects) {
		t.Fatalf("rejected credentials changed the bucket: %v, was %v", got, objects)
	}
}

// bucketKeys lists every object of the bucket with its ETag, to tell an
// unchanged bucket from one written to.
func bucketKeys(t *testing.T, srv *s3test.Server) []string {
	var keys []string
	for _, o := range listObjects(t, srv, "") {
		keys = append(keys, aws.ToString(o.Key)+" "+aws.ToString(o.ETag))
	}
	return keys
}

func TestObjectThatIsNotADatabase(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.PutObject(t, key, []byte("just some text, not SQLite"))
	st := open(t, srv)
	err := addCustomer(st, "C1")
	if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "s3://licenses/"+key) {
		t.Fatalf("got %v", err)
	}
	if _, err := st.Migrate(context.Background()); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("init-db over a non-database: %v", err)
	}
	if string(srv.Object(t, key)) != "just some text, not SQLite" {
		t.Fatal("the object was changed")
	}
}

// The published state, rebuilt by a cold process, and the snapshot object
// fetched as is, are databases the stock sqlite3 tool accepts.
func TestObjectPassesIntegrityCheck(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv("CAIO_REQUIRE_TEST_TOOLS") != "" {
			t.Fatal("sqlite3 not installed (Debian package sqlite3)")
		}
		t.Skip("sqlite3 not installed")
	}
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	st, err := s3store.OpenWith(context.Background(), "s3://"+s3test.Bucket+"/"+key, s3store.Options{CacheDir: t.TempDir(), SnapshotEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	initDB(t, st)
	for i := range 5 {
		if err := addCustomer(st, fmt.Sprintf("C%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	st.Close() // waits for the snapshot in flight
	check := func(path, want string) {
		t.Helper()
		out, err := exec.Command(sqlite3, path, "PRAGMA integrity_check; SELECT count(*) FROM customers;").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok\n"+want {
			t.Fatalf("sqlite3 %s: %v %q, want ok and %s customers", filepath.Base(path), err, out, want)
		}
	}
	backup := filepath.Join(t.TempDir(), "rebuilt.db")
	if err := open(t, srv).Backup(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	check(backup, "5")
	// A snapshot is published every third delta: the object holds the
	// state at sequence 3 or later.
	snap := filepath.Join(t.TempDir(), "snapshot.db")
	os.WriteFile(snap, srv.Object(t, key), 0o600)
	out, _ := exec.Command(sqlite3, snap, "SELECT count(*) FROM customers;").CombinedOutput()
	if n := strings.TrimSpace(string(out)); n == "0" || n == "" {
		t.Fatalf("the snapshot object holds %q customers: no snapshot was published", n)
	}
	check(snap, strings.TrimSpace(string(out)))
}

func TestBackupIsAConsistentCopy(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	st := open(t, srv)
	initDB(t, st)
	addCustomer(st, "C1")
	addCustomer(open(t, srv), "C2") // another process: the backup catches up first
	dest := filepath.Join(t.TempDir(), "backup.db")
	if err := st.Backup(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	local, err := sqlitestore.Open(context.Background(), dest, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if got := customers(t, local); strings.Join(got, ",") != "C1,C2" {
		t.Fatalf("backup holds %v, want C1,C2", got)
	}
}

func TestVersitygwConditionalWrites(t *testing.T) {
	srv := s3test.StartVersity(t)
	initDB(t, open(t, srv))
	var wg sync.WaitGroup
	for w := range 4 {
		st := open(t, srv)
		wg.Go(func() {
			for i := range 3 {
				if err := addCustomer(st, fmt.Sprintf("W%d-%d", w, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := customers(t, open(t, srv)); len(got) != 12 {
		t.Fatalf("%d customers, want 12", len(got))
	}
	// Wrong credentials are a configuration error naming what to check.
	bad := *srv
	bad.SecretKey = "wrong"
	st := open(t, &bad)
	if err := st.View(context.Background(), func(licensing.Tx) error { return nil }); licensing.ErrorCode(err) != licensing.CodeConfig {
		t.Fatalf("wrong secret key: %v", err)
	}
}
