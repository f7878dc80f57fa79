package s3store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
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
	st, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The attack: a cached copy is replaced with a database of someone else's
// making. It no longer matches what S3 said about it, so it is discarded
// and fetched again: neither a reader nor the next write sees it, and it
// never reaches S3.
func TestSwappedCacheCopyIsDiscarded(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	cache := t.TempDir()
	warm := openIn(t, proxy.Server, cache)
	initDB(t, warm)
	if err := addCustomer(warm, "C1"); err != nil {
		t.Fatal(err)
	}
	if got := customers(t, warm); !slices.Equal(got, []string{"C1"}) {
		t.Fatalf("customers %v", got)
	}
	copies := cachedCopies(t, cache)
	if len(copies) == 0 {
		t.Fatal("nothing cached")
	}

	// A forged database: the same one plus a customer, put in its place
	// under the same name (the ETag S3 will still answer 304 for).
	forged := filepath.Join(t.TempDir(), "forged.db")
	os.WriteFile(forged, srv.Object(t, key), 0o600)
	fst, err := sqlitestore.Open(context.Background(), forged, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := addCustomer(fst, "EVIL"); err != nil {
		t.Fatal(err)
	}
	whole := filepath.Join(t.TempDir(), "whole.db")
	if err := fst.Backup(context.Background(), whole); err != nil {
		t.Fatal(err)
	}
	fst.Close()
	if got := customers(t, mustOpen(t, whole)); !slices.Equal(got, []string{"C1", "EVIL"}) {
		t.Fatalf("the forged database holds %v", got)
	}
	evil, _ := os.ReadFile(whole)
	for _, c := range copies {
		if err := os.WriteFile(c, evil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A cold process sharing the cache, and the warm one, both see S3's truth.
	cold := openIn(t, proxy.Server, cache)
	if got := customers(t, cold); !slices.Equal(got, []string{"C1"}) {
		t.Fatalf("cold reader trusted the swapped copy: %v", got)
	}
	if got := customers(t, warm); !slices.Equal(got, []string{"C1"}) {
		t.Fatalf("warm reader trusted the swapped copy: %v", got)
	}
	// The same size, other content: still caught.
	for _, c := range cachedCopies(t, cache) {
		same, _ := os.ReadFile(c)
		same[len(same)-1] ^= 0xff
		os.WriteFile(c, same, 0o600)
	}
	if err := addCustomer(warm, "C2"); err != nil {
		t.Fatal(err)
	}
	check := openIn(t, srv, t.TempDir())
	if got := customers(t, check); !slices.Equal(got, []string{"C1", "C2"}) {
		t.Fatalf("S3 holds %v after a write over a swapped copy, want C1 C2", got)
	}
}

// An object with a planted trigger is refused by readers and writers, and
// nothing is written over it.
func TestObjectWithPlantedTriggerIsRefused(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	st := openIn(t, srv, t.TempDir())
	initDB(t, st)
	addCustomer(st, "C1")
	local := filepath.Join(t.TempDir(), "planted.db")
	os.WriteFile(local, srv.Object(t, key), 0o600)
	db, _ := sql.Open("sqlite3", local)
	if _, err := db.Exec(`CREATE TRIGGER keep_active AFTER UPDATE OF status ON licenses BEGIN UPDATE licenses SET status = 'active' WHERE id = NEW.id; END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	planted, _ := os.ReadFile(local)
	srv.PutObject(t, key, planted)

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
