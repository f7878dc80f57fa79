package s3store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// The cache follows no links: not the cache directory, not a file in it,
// and on the way to it only links no one else could have planted.

// tryCache opens the store with its working copies in cache and closes
// it again.
func tryCache(t *testing.T, cache string) error {
	t.Helper()
	st, err := s3store.Open(context.Background(), "s3://"+s3test.Bucket+"/"+key, cache)
	if err == nil {
		st.Close()
	}
	return err
}

// refused checks that err is a CONFIG error whose message holds each of
// want (what is at fault, what to do).
func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if licensing.ErrorCode(err) != licensing.CodeConfig {
		t.Fatalf("got %v, want a CONFIG error", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%q does not say %q", err, w)
		}
	}
}

// slotFile is the path of slot 0's file with suffix for this test's key.
func slotFile(cache, suffix string) string {
	sum := sha256.Sum256([]byte("s3://" + s3test.Bucket + "/" + key))
	return filepath.Join(cache, hex.EncodeToString(sum[:8])+"-0"+suffix)
}

// victim is a file of ours outside the cache that a planted link points
// at; untouched checks that nothing was written through the link.
func victim(t *testing.T) (path string, untouched func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(path, []byte("not a cache file"), 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	return path, func() {
		t.Helper()
		after, err := os.Stat(path)
		got, _ := os.ReadFile(path)
		if err != nil || string(got) != "not a cache file" || after.Mode() != before.Mode() || !after.ModTime().Equal(before.ModTime()) {
			t.Fatalf("the link's target was written through: %q %v %v", got, after, err)
		}
	}
}

func TestCacheDirectoryThatIsALinkIsRefused(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	ours := t.TempDir()
	os.Chmod(ours, 0o700) // private and ours: the link is refused all the same
	link := filepath.Join(t.TempDir(), "cache")
	if err := os.Symlink(ours, link); err != nil {
		t.Fatal(err)
	}
	refused(t, tryCache(t, link), link, "symbolic link", "CAIO_LICENSE_CACHE_DIR")
	dangling := filepath.Join(t.TempDir(), "dangling")
	os.Symlink(filepath.Join(ours, "missing"), dangling)
	refused(t, tryCache(t, dangling), dangling, "symbolic link")
	if entries, _ := os.ReadDir(ours); len(entries) != 0 {
		t.Fatalf("files were made through the link: %v", entries)
	}
}

// A link (or a second hard link, or a pipe) where a file of the slot is
// looked for is refused when the store opens, and nothing is written
// through it.
func TestCacheFileThatIsALinkIsRefused(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	for _, suffix := range []string{".lock", ".db", ".db-wal", ".db-shm", ".meta"} {
		cache := t.TempDir()
		target, untouched := victim(t)
		link := slotFile(cache, suffix)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		refused(t, tryCache(t, cache), link, "symbolic link", "remove the link")
		untouched()
	}
	cache := t.TempDir()
	target, untouched := victim(t)
	if err := os.Link(target, slotFile(cache, ".db")); err != nil {
		t.Fatal(err)
	}
	refused(t, tryCache(t, cache), slotFile(cache, ".db"), "linked from 2 places")
	untouched()

	cache = t.TempDir()
	if err := syscall.Mkfifo(slotFile(cache, ".meta"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tryCache(t, cache) }()
	select {
	case err := <-done:
		refused(t, err, slotFile(cache, ".meta"), "not a regular file")
	case <-time.After(20 * time.Second):
		t.Fatal("opening a named pipe in the cache hangs")
	}
}

// A link planted in the slot while a process holds it is refused at the
// next operation, before SQLite or the log opens anything through it.
func TestCacheFileLinkedWhileHeldIsRefused(t *testing.T) {
	for _, suffix := range []string{".db", ".db-wal"} {
		srv := s3test.StartGofakes3(t)
		cache := t.TempDir()
		st := openIn(t, srv, cache)
		initDB(t, st)
		if err := addCustomer(st, "C1"); err != nil {
			t.Fatal(err)
		}
		target, untouched := victim(t)
		link := slotFile(cache, suffix)
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		refused(t, addCustomer(st, "C2"), link, "symbolic link")
		refused(t, st.View(context.Background(), func(licensing.Tx) error { return nil }), link, "symbolic link")
		untouched()
	}
}

// A cache directory that group or others can write to is refused, and so
// is one under a directory others can write to that is not sticky (they
// could rename the cache directory away and put their own in its place);
// a sticky one (/tmp) is fine.
func TestCacheDirectoryOthersCouldChangeIsRefused(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	group := filepath.Join(t.TempDir(), "group")
	os.Mkdir(group, 0o700)
	os.Chmod(group, 0o770)
	refused(t, tryCache(t, group), group, "other users can write")

	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	refused(t, tryCache(t, filepath.Join(open, "cache")), open, "not sticky", "CAIO_LICENSE_CACHE_DIR")
	if _, err := os.Lstat(filepath.Join(open, "cache")); err == nil {
		t.Fatal("the cache directory was made under a directory others can change")
	}
	os.Chmod(open, 0o777|os.ModeSticky)
	if err := tryCache(t, filepath.Join(open, "cache")); err != nil {
		t.Fatalf("a cache directory in a sticky directory: %v", err)
	}
}

// One's own link above the cache directory (~/.cache on another disk) is
// followed.
func TestOwnLinkAboveTheCacheIsFollowed(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "data", "cache"), 0o700)
	os.Mkdir(filepath.Join(root, "home"), 0o700)
	if err := os.Symlink("../data/cache", filepath.Join(root, "home", ".cache")); err != nil {
		t.Fatal(err)
	}
	st := openIn(t, srv, filepath.Join(root, "home", ".cache", "caio-licensing"))
	initDB(t, st)
	if err := addCustomer(st, "C1"); err != nil {
		t.Fatal(err)
	}
	if copies := cachedCopies(t, filepath.Join(root, "data", "cache", "caio-licensing")); len(copies) != 1 {
		t.Fatalf("working copies behind the link: %v", copies)
	}
}

// Without a home, the default cache directory is one of this user's own in
// the temporary directory, made private.
func TestDefaultCacheDirWithoutHomeIsPrivate(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	tmp := t.TempDir()
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("TMPDIR", tmp)
	want := filepath.Join(tmp, "caio-licensing-"+strconv.Itoa(os.Getuid()))
	if got := s3store.DefaultCacheDir(); got != want {
		t.Fatalf("DefaultCacheDir() = %s, want %s", got, want)
	}
	if err := tryCache(t, ""); err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(want)
	if err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 || int(info.Sys().(*syscall.Stat_t).Uid) != os.Getuid() {
		t.Fatalf("the default cache directory: %v %v, want a directory of ours, 0700", info, err)
	}
}

// asNobody runs script as user nobody, as another local user would; the
// test is skipped where that cannot be done.
func asNobody(t *testing.T, script string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to act as a second user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv to act as a second user")
	}
	out, err := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("acting as nobody: %v %s", err, out)
	}
}

// The attack on a shared machine: another local user plants a link, or a
// directory of theirs, where the cache directory (or one on the way to it)
// is looked for in a shared temporary directory. Each is refused, the
// default without a home included, and nothing is made through them.
func TestWhatAnotherUserPlantsIsRefused(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	srv.SetEnv(t, key)
	base := t.TempDir()
	os.Chmod(base, 0o755)
	os.Chmod(filepath.Dir(base), 0o755) // the test's own temp root
	shared := filepath.Join(base, "shared-tmp")
	os.Mkdir(shared, 0o700)
	os.Chmod(shared, 0o777|os.ModeSticky)
	ours := t.TempDir() // where the links point: a private directory of ours
	os.Chmod(ours, 0o700)
	mine := filepath.Join(shared, "caio-licensing-"+strconv.Itoa(os.Getuid()))
	asNobody(t, "ln -s "+ours+" "+mine+
		" && mkdir -m 0700 "+shared+"/theirs"+
		" && mkdir -m 0755 "+shared+"/above"+
		" && ln -s "+ours+" "+shared+"/link-above")

	refused(t, tryCache(t, mine), mine, "symbolic link")
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("TMPDIR", shared)
	refused(t, tryCache(t, ""), mine, "symbolic link", "CAIO_LICENSE_CACHE_DIR")
	refused(t, tryCache(t, filepath.Join(shared, "theirs")), shared+"/theirs", "belongs to user id 65534")
	refused(t, tryCache(t, filepath.Join(shared, "above", "cache")), shared+"/above", "belongs to user id 65534")
	refused(t, tryCache(t, filepath.Join(shared, "link-above", "cache")), shared+"/link-above", "symbolic link of user id 65534")
	if entries, _ := os.ReadDir(ours); len(entries) != 0 {
		t.Fatalf("files were made through another user's link: %v", entries)
	}
	if _, err := os.Lstat(filepath.Join(shared, "above", "cache")); err == nil {
		t.Fatal("a cache directory was made in another user's directory")
	}
	// Once the link is gone, the default is made ours and private.
	if err := os.Remove(mine); err != nil {
		t.Fatal(err)
	}
	if err := tryCache(t, ""); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(mine); err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
		t.Fatalf("the default cache directory: %v %v", info, err)
	}
}
