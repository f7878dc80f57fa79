package s3store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/pagelog"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func openIn(t *testing.T, srv *s3test.Server, cache string) *s3store.Store {
	t.Helper()
	srv.SetEnv(t, key)
	st, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func cachedCopies(t *testing.T, cache string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(cache, "*.db"))
	return m
}

func mustOpen(t *testing.T, path string) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{Mode: sqlitestore.ModeReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The attack: the working copy in the cache is replaced with a database of
// someone else's making. The process that holds it sees the file changed
// under it; a process that takes it over finds it does not match the
// recorded checksum. Either way it is dropped and rebuilt from S3: no
// reader sees it, and it never reaches S3.
func TestSwappedCacheCopyIsDiscarded(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	cache := t.TempDir()
	warm := openIn(t, srv, cache)
	initDB(t, warm)
	if err := addCustomer(warm, "C1"); err != nil {
		t.Fatal(err)
	}
	copies := cachedCopies(t, cache)
	if len(copies) != 1 {
		t.Fatalf("working copies %v, want one", copies)
	}
	// A forged database: the same one plus a customer.
	forged := filepath.Join(t.TempDir(), "forged.db")
	if err := warm.Backup(context.Background(), forged); err != nil {
		t.Fatal(err)
	}
	fst, err := sqlitestore.Open(context.Background(), forged, sqlitestore.Options{Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	if err := addCustomer(fst, "EVIL"); err != nil {
		t.Fatal(err)
	}
	fst.Close()
	if got := customers(t, mustOpen(t, forged)); !slices.Equal(got, []string{"C1", "EVIL"}) {
		t.Fatalf("the forged database holds %v", got)
	}
	evil, _ := os.ReadFile(forged)
	swap := func() {
		for _, c := range cachedCopies(t, cache) {
			if err := os.WriteFile(c, evil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap()
	// The process holding the copy, and a cold one sharing the directory.
	if got := customers(t, warm); !slices.Equal(got, []string{"C1"}) {
		t.Fatalf("warm reader trusted the swapped copy: %v", got)
	}
	cold := openIn(t, srv, cache)
	if got := customers(t, cold); !slices.Equal(got, []string{"C1"}) {
		t.Fatalf("cold reader trusted the swapped copy: %v", got)
	}
	cold.Close()
	// Swapped while no process holds it: the next holder checks it.
	warm.Close()
	swap()
	next := openIn(t, srv, cache)
	if err := addCustomer(next, "C2"); err != nil {
		t.Fatal(err)
	}
	// The same size, other content, under a holder: still caught.
	for _, c := range cachedCopies(t, cache) {
		same, _ := os.ReadFile(c)
		same[len(same)-1] ^= 0xff
		os.WriteFile(c, same, 0o600)
	}
	if err := addCustomer(next, "C3"); err != nil {
		t.Fatal(err)
	}
	check := openIn(t, srv, t.TempDir())
	if got := customers(t, check); !slices.Equal(got, []string{"C1", "C2", "C3"}) {
		t.Fatalf("S3 holds %v after writes over swapped copies, want C1 C2 C3", got)
	}
}

// A snapshot with a planted trigger, published with a matching checksum by
// someone who can write the bucket, is refused by readers and writers, and
// nothing is written over it; one whose checksum does not match is refused
// before it is opened.
func TestObjectWithPlantedTriggerIsRefused(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	st := openIn(t, srv, t.TempDir())
	initDB(t, st)
	addCustomer(st, "C1")
	local := filepath.Join(t.TempDir(), "planted.db")
	if err := st.Backup(context.Background(), local); err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("sqlite3", local)
	if _, err := db.Exec(`CREATE TRIGGER keep_active AFTER UPDATE OF status ON licenses BEGIN UPDATE licenses SET status = 'active' WHERE id = NEW.id; END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	pagelog.Normalize(local)
	sum, _ := pagelog.Checksum(local)
	planted, _ := os.ReadFile(local)
	// Published as a new snapshot far ahead of the log, so no delta follows.
	// With the log still there it is refused for that (a snapshot numbered
	// past the log); with the log gone (expired), it stands alone and the
	// schema check refuses it.
	srv.PutObjectMeta(t, key, planted, map[string]string{"caio-seq": "1000", "caio-checksum": strconv.FormatUint(sum, 16)})
	if err := openIn(t, srv, t.TempDir()).View(context.Background(), func(licensing.Tx) error { return nil }); licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "after delta 1000") {
		t.Errorf("a snapshot numbered past the log: %v", err)
	}
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3test.Bucket), Prefix: aws.String(key + ".log/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(s3test.Bucket), Key: o.Key})
	}

	fresh := openIn(t, srv, t.TempDir())
	for name, err := range map[string]error{
		"read":  fresh.View(context.Background(), func(licensing.Tx) error { return nil }),
		"write": addCustomer(fresh, "C2"),
	} {
		if licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "keep_active") {
			t.Errorf("%s: %v, want DB_INVALID naming the trigger", name, err)
		}
	}
	if string(srv.Object(t, key)) != string(planted) {
		t.Fatal("the object was written over")
	}
	srv.PutObjectMeta(t, key, planted, map[string]string{"caio-seq": "1000", "caio-checksum": strconv.FormatUint(sum^1, 16)})
	if err := openIn(t, srv, t.TempDir()).View(context.Background(), func(licensing.Tx) error { return nil }); licensing.ErrorCode(err) != licensing.CodeDBInvalid || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a snapshot that does not match its checksum: %v", err)
	}
}

// The cache directory must be this user's and closed to others.
func TestCacheDirectoryMustBePrivate(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	_, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, open)
	if licensing.ErrorCode(err) != licensing.CodeConfig || !strings.Contains(err.Error(), open) {
		t.Fatalf("a world-writable cache directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, file); licensing.ErrorCode(err) != licensing.CodeConfig {
		t.Fatalf("a file as cache directory: %v", err)
	}
	made := filepath.Join(t.TempDir(), "a", "b")
	if _, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, made); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(made); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("new cache directory %v %v, want 0700", info, err)
	}
}
