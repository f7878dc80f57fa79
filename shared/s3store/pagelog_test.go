package s3store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func openOpt(t *testing.T, srv *s3test.Server, opt s3store.Options) *s3store.Store {
	t.Helper()
	srv.SetEnv(t, key)
	if opt.CacheDir == "" {
		opt.CacheDir = t.TempDir()
	}
	st, err := s3store.OpenWith(context.Background(), "s3://"+s3test.Bucket+"/"+key, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func headInput(k string) *s3.HeadObjectInput {
	return &s3.HeadObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String(k)}
}

func deltaKey(seq int) string { return fmt.Sprintf("%s.log/%020d", key, seq) }

// dump is every row of every table, in order: two databases with equal
// dumps hold the same data.
func dump(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var out []string
	for _, table := range tables {
		rs, err := db.Query(fmt.Sprintf("SELECT * FROM %q ORDER BY 1", table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rs.Scan(ptrs...)
			out = append(out, fmt.Sprintf("%s %v", table, vals))
		}
		rs.Close()
	}
	return out
}

// A reader 1,000 deltas behind catches up to exactly the writer's state.
func TestLaggingReaderCatchesUp(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	writer := openOpt(t, srv, s3store.Options{SnapshotEvery: 100000})
	initDB(t, writer)
	reader := open(t, srv)
	if got := customers(t, reader); len(got) != 0 {
		t.Fatalf("customers %v", got)
	}
	for i := range 1000 {
		if err := addCustomer(writer, fmt.Sprintf("C%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := customers(t, reader); len(got) != 1000 || got[999] != "C0999" {
		t.Fatalf("the lagging reader has %d customers", len(got))
	}
	a, b := filepath.Join(t.TempDir(), "w.db"), filepath.Join(t.TempDir(), "r.db")
	writer.Backup(context.Background(), a)
	reader.Backup(context.Background(), b)
	if !slices.Equal(dump(t, a), dump(t, b)) {
		t.Fatal("the reader's state differs from the writer's")
	}
}

// Snapshots published after every write race the commits of two other
// writers: no write is lost, and a cold process built from the newest
// snapshot sees them all.
func TestSnapshotsRacingCommits(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	initDB(t, open(t, srv))
	var wg sync.WaitGroup
	for w := range 3 {
		st := openOpt(t, srv, s3store.Options{SnapshotEvery: 1 + w%2})
		wg.Go(func() {
			for i := range 8 {
				if err := addCustomer(st, fmt.Sprintf("W%d-%d", w, i)); err != nil {
					t.Error(err)
				}
			}
			st.Close()
		})
	}
	wg.Wait()
	if got := customers(t, open(t, srv)); len(got) != 24 {
		t.Fatalf("%d customers after racing snapshots, want 24: %v", len(got), got)
	}
	snap := filepath.Join(t.TempDir(), "snapshot.db")
	os.WriteFile(snap, srv.Object(t, key), 0o600)
	local, err := sqlitestore.Open(context.Background(), snap, sqlitestore.Options{Mode: sqlitestore.ModeReadOnly})
	if err != nil {
		t.Fatalf("the snapshot object does not open: %v", err)
	}
	n := len(customers(t, local))
	local.Close()
	if n < 10 {
		t.Fatalf("the newest snapshot holds %d customers: snapshots did not keep up", n)
	}
}

// A delta damaged in S3, and a well-formed delta of another database put
// in the log, are both refused with DB_INVALID; the reader keeps the state
// it had and applies nothing from them.
func TestCorruptAndForeignDeltasAreRefused(t *testing.T) {
	for _, kind := range []string{"corrupt", "foreign"} {
		t.Run(kind, func(t *testing.T) {
			srv := s3test.StartGofakes3(t)
			writer := open(t, srv)
			initDB(t, writer)
			addCustomer(writer, "C1")
			readerCache := t.TempDir()
			reader := openOpt(t, srv, s3store.Options{CacheDir: readerCache})
			if got := customers(t, reader); !slices.Equal(got, []string{"C1"}) {
				t.Fatalf("customers %v", got)
			}
			addCustomer(writer, "C2")
			// init-db publishes snapshot 0; C1 and C2 are deltas 1 and 2.
			var bad []byte
			switch kind {
			case "corrupt":
				bad = srv.Object(t, deltaKey(2))
				bad[len(bad)/2] ^= 0x40
			case "foreign":
				// The same step in another database: a valid delta whose base differs.
				other := s3test.StartGofakes3(t)
				ow := open(t, other)
				initDB(t, ow)
				addCustomer(ow, "X1")
				addCustomer(ow, "X2")
				bad = other.Object(t, deltaKey(2))
				srv.SetEnv(t, key)
			}
			srv.PutObject(t, deltaKey(2), bad)
			err := reader.View(context.Background(), func(licensing.Tx) error { return nil })
			if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "delta 2") {
				t.Fatalf("got %v, want DB_INVALID naming delta 2", err)
			}
			if err := addCustomer(reader, "C3"); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
				t.Fatalf("a write over the bad delta: %v", err)
			}
			copies := cachedCopies(t, readerCache)
			if len(copies) != 1 {
				t.Fatalf("working copies %v", copies)
			}
			raw, _ := os.ReadFile(copies[0])
			backup := filepath.Join(t.TempDir(), "b.db")
			os.WriteFile(backup, raw, 0o600)
			local, err := sqlitestore.Open(context.Background(), backup, sqlitestore.Options{Mode: sqlitestore.ModeReadOnly})
			if err != nil {
				t.Fatal(err)
			}
			defer local.Close()
			if got := customers(t, local); !slices.Equal(got, []string{"C1"}) {
				t.Fatalf("the reader's copy holds %v after refusing the delta, want C1", got)
			}
		})
	}
}

// backup --at reproduces, row by row, a copy taken at that time.
func TestBackupAtReproducesThePast(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	st := openOpt(t, srv, s3store.Options{SnapshotEvery: 3})
	initDB(t, st)
	for i := range 5 {
		addCustomer(st, fmt.Sprintf("C%d", i))
	}
	time.Sleep(1100 * time.Millisecond) // S3 times are whole seconds
	then := time.Now()
	copyThen := filepath.Join(t.TempDir(), "then.db")
	if err := st.Backup(context.Background(), copyThen); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	for i := range 5 {
		addCustomer(st, fmt.Sprintf("D%d", i))
	}
	at := filepath.Join(t.TempDir(), "at.db")
	if err := open(t, srv).BackupAt(context.Background(), then, at); err != nil {
		t.Fatal(err)
	}
	want, got := dump(t, copyThen), dump(t, at)
	if len(want) == 0 || !slices.Equal(want, got) {
		t.Fatalf("backup --at differs from the copy taken then:\nwant %d rows\n got %d rows", len(want), len(got))
	}
	if err := open(t, srv).BackupAt(context.Background(), then.Add(-time.Hour), filepath.Join(t.TempDir(), "x.db")); licensing.ErrorCode(err) != licensing.CodeBadRequest {
		t.Fatalf("a time before any snapshot: %v", err)
	}
}

// A database that is one whole object, as earlier builds wrote it, is
// adopted with no step: read, written through deltas, and the object stays
// as it was (a backup sqlite3 opens).
func TestWholeObjectDatabaseIsAdopted(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{Create: true, Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	addCustomer(old, "OLD")
	old.Close()
	raw, _ := os.ReadFile(path)
	srv.PutObject(t, key, raw)

	st := open(t, srv)
	if got := customers(t, st); !slices.Equal(got, []string{"OLD"}) {
		t.Fatalf("adopted database holds %v", got)
	}
	if err := addCustomer(st, "NEW"); err != nil {
		t.Fatal(err)
	}
	if got := customers(t, open(t, srv)); !slices.Equal(got, []string{"NEW", "OLD"}) {
		t.Fatalf("a cold process sees %v", got)
	}
	if string(srv.Object(t, key)) != string(raw) {
		t.Fatal("the whole object was changed")
	}
	if first := srv.Object(t, key+".snapshots/00000000000000000000.db"); string(first) != string(raw) {
		t.Fatal("the whole object was not kept as the history's first snapshot")
	}
}

// restore publishes a backup as the next state; a warm process catches up.
func TestRestorePublishesABackup(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	st := open(t, srv)
	initDB(t, st)
	addCustomer(st, "C1")
	backup := filepath.Join(t.TempDir(), "b.db")
	st.Backup(context.Background(), backup)
	warm := open(t, srv)
	addCustomer(warm, "C2")
	if err := st.Restore(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	if got := customers(t, warm); !slices.Equal(got, []string{"C1"}) {
		t.Fatalf("after restore a warm process sees %v, want C1", got)
	}
	if err := addCustomer(warm, "C3"); err != nil {
		t.Fatal(err)
	}
	if got := customers(t, open(t, srv)); !slices.Equal(got, []string{"C1", "C3"}) {
		t.Fatalf("after restore and a write: %v", got)
	}
	notDB := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(notDB, []byte("not a database"), 0o600)
	// The file is the command's argument: the mistake is in it (BAD_REQUEST).
	if err := st.Restore(context.Background(), notDB); licensing.ErrorCode(err) != licensing.CodeBadRequest || !strings.Contains(err.Error(), "written by 'manage-licenses backup'") {
		t.Fatalf("restoring a non-database: %v", err)
	}
}

// maintain removes history past the window, never what a reader needs: a
// cold process, and one whose copy is older than the trust window, both
// still rebuild the current state.
func TestPruneKeepsWhatReadersNeed(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	opt := s3store.Options{SnapshotEvery: 4, History: 2 * time.Second}
	st := openOpt(t, srv, opt)
	initDB(t, st)
	stale := openOpt(t, srv, opt)
	customers(t, stale) // holds sequence 0
	for i := range 20 { // past 16: the merged delta of 1-16 is made before the window ends
		addCustomer(st, fmt.Sprintf("A%d", i))
	}
	st.Close() // waits for the snapshot
	time.Sleep(2100 * time.Millisecond)
	st = openOpt(t, srv, opt)
	for i := range 6 {
		addCustomer(st, fmt.Sprintf("B%d", i))
	}
	st.Close()
	rep, err := openOpt(t, srv, opt).PruneHistory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.DeltasRemoved == 0 || rep.MergedRemoved == 0 {
		t.Fatalf("nothing pruned: %+v", rep)
	}
	if _, err := srv.Client().HeadObject(context.Background(), headInput(deltaKey(3))); err == nil {
		t.Fatal("delta 3 is still there")
	}
	if _, err := srv.Client().HeadObject(context.Background(), headInput(mergedName(1, 16))); err == nil {
		t.Fatal("the merged delta of 1-16 is still there")
	}
	if got := customers(t, open(t, srv)); len(got) != 26 {
		t.Fatalf("a cold process after pruning sees %d customers, want 26", len(got))
	}
	if got := customers(t, stale); len(got) != 26 {
		t.Fatalf("a process whose copy predates the pruned deltas sees %d customers, want 26", len(got))
	}
}

// The commit metrics count what happened: every write committed once, and
// every lost put-if-absent as a conflict.
func TestCommitMetrics(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	initDB(t, open(t, proxy.Server))
	addCustomer(open(t, proxy.Server), "FIRST") // the first delta also copies snapshot 0 into the history
	var mu sync.Mutex
	var out strings.Builder
	sink := metrics.NewEMF(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) }), "Function", "test")
	proxy.Reset()
	// The PUTs of deltas (not of the merged deltas writers also make).
	var deltaPuts atomic.Int64
	proxy.Decide = func(r *http.Request) s3test.Fault {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, ".log/") {
			deltaPuts.Add(1)
		}
		return s3test.Pass
	}
	var wg sync.WaitGroup
	for w := range 3 {
		st := openOpt(t, proxy.Server, s3store.Options{SnapshotEvery: 1 << 30, Metrics: sink})
		wg.Go(func() {
			for i := range 6 {
				if err := addCustomer(st, fmt.Sprintf("W%d-%d", w, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	counts := map[string]float64{}
	sizes := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m[metrics.S3Commits] != nil:
			counts[m["Outcome"].(string)] += m[metrics.S3Commits].(float64)
		case m[metrics.DatabaseBytes] != nil:
			if m[metrics.DatabaseBytes].(float64) < 4096 {
				t.Fatalf("database size %v", m[metrics.DatabaseBytes])
			}
			sizes++
		}
	}
	if counts["committed"] != 18 || sizes != 18 || counts["committed"]+counts["conflict"] != float64(deltaPuts.Load()) {
		t.Fatalf("commit metrics %v (%d sizes) for 18 writes and %d PUTs", counts, sizes, deltaPuts.Load())
	}
	t.Logf("18 writes from 3 writers: %v", counts)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Storage that damages a delta (the attack run by hand on versitygw): the
// download fails S3's own stored checksum, and a fresh reader is told the
// delta is damaged (DB_INVALID), not that S3 is busy.
func TestDeltaDamagedInStorage(t *testing.T) {
	srv := s3test.StartVersity(t)
	st := open(t, srv)
	initDB(t, st)
	addCustomer(st, "C1")
	addCustomer(st, "C2")
	path := filepath.Join(srv.Root, s3test.Bucket, deltaKey(2))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	os.WriteFile(path, b, 0o644)
	err = open(t, srv).View(context.Background(), func(licensing.Tx) error { return nil })
	if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "delta 2") {
		t.Fatalf("a delta damaged in storage: %v", err)
	}
}
