package s3log

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
)

// The cache holds working copies of the database that a later process
// takes over and publishes changes of. So it must be private, and follow
// no links: a directory that another local user created first, or can
// write to, or a link they planted where the directory or a file in it is
// looked for, would let them swap in a database of their choosing or have
// us write through to a file of their choosing.
//
// What is checked (openCacheDir, checkSlot):
//
//   - On the way to the cache directory, every directory is owned by this
//     user or root and, if others can write to it, sticky (like /tmp), so
//     that nobody else can rename or replace what it holds that is ours or
//     root's. Group writing is allowed to this user's own group, which on
//     systems with a group per user (umask 002) is this user alone. A
//     symbolic link on the way is followed only if this user or root owns
//     it (~/.cache pointing at another disk is one's own doing; a link
//     another user planted in /tmp is not), and where it leads is checked
//     the same way.
//   - The cache directory itself is no link, is this user's, and is closed
//     to group and others writing; created 0700, and closed to them if they
//     can only read it (mkdir under umask 022).
//   - Every file in it is a plain file of this user's with no other link.
//
// The directory is opened once (O_NOFOLLOW) and held; the files this
// package opens itself it opens relative to it (openat, O_NOFOLLOW). SQLite
// and package pagelog open the working copy by path, which nothing makes
// refuse a link: before every operation the path is checked to lead to
// the directory held, and the slot's files to be no links (checkSlot).
// Nothing can change between that check and their opens: once the way is
// one only this user or root can change and the directory is ours and
// closed, nobody else can create, rename or replace an entry in it. What
// the checks catch is what was there before: links planted while the
// directory was open to others, or by hand. Temporary files are made in
// fresh directories of random names (os.MkdirTemp), where nothing can
// have been planted.

// cacheDir is the cache directory, opened and checked by openCacheDir.
type cacheDir struct {
	fd    int    // the directory, opened O_NOFOLLOW; -1 once closed
	path  string // its path with every link on the way resolved: what SQLite is given
	given string // as configured, for messages
}

// maxLinks bounds the links followed on the way to the cache directory,
// as the kernel bounds them.
const maxLinks = 40

// openCacheDir opens the cache directory dir, creating it (0700) and what
// is missing on the way, and checks it and the way to it.
func openCacheDir(dir string) (*cacheDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &CacheError{Problem: CacheUnreadable, Dir: dir, Err: err}
	}
	above, name := filepath.Split(abs)
	if name == "" {
		return nil, &CacheError{Problem: CacheUncreatable, Dir: dir, Err: errors.New("the root directory cannot be the cache")}
	}
	above, err = resolveWay(dir, above)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(above, name)
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, &CacheError{Problem: CacheUncreatable, Dir: dir, Err: err}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		info, lerr := os.Lstat(path)
		switch {
		case lerr == nil && info.Mode()&fs.ModeSymlink != 0:
			return nil, &CacheError{Problem: CacheLink, Dir: dir, Path: path}
		case lerr == nil && !info.IsDir():
			return nil, &CacheError{Problem: CacheNotDirectory, Dir: dir, Path: path}
		}
		return nil, &CacheError{Problem: CacheUnreadable, Dir: dir, Path: path, Err: err}
	}
	c := &cacheDir{fd: fd, path: path, given: dir}
	if err := c.check(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// resolveWay returns path, the directory that holds the cache directory,
// with every link on it resolved, creating what is missing (0700), and
// checks each directory and link on the way. Paths are fine here, not
// directory descriptors: each component is checked to be one only this
// user or root can change before the next is looked up in it.
func resolveWay(dir, path string) (string, error) {
	resolved := "/"
	root, err := os.Lstat(resolved)
	if err != nil {
		return "", &CacheError{Problem: CacheUnreadable, Dir: dir, Path: resolved, Err: err}
	}
	if err := checkWay(dir, resolved, root); err != nil {
		return "", err
	}
	todo := strings.Split(path, "/")
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		if name == "" || name == "." {
			continue
		}
		// resolved holds no link, so ".." is its lexical parent, which
		// was checked on the way down.
		next := filepath.Join(resolved, name)
		info, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(next, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", &CacheError{Problem: CacheUncreatable, Dir: dir, Path: next, Err: err}
			}
			info, err = os.Lstat(next)
		}
		if err != nil {
			return "", &CacheError{Problem: CacheUnreadable, Dir: dir, Path: next, Err: err}
		}
		if err := checkWay(dir, next, info); err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		target, err := os.Readlink(next)
		if err == nil && links > maxLinks {
			err = syscall.ELOOP
		}
		if err != nil {
			return "", &CacheError{Problem: CacheUnreadable, Dir: dir, Path: next, Err: err}
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return resolved, nil
}

// checkWay checks path, a directory or link on the way to the cache
// directory: nobody but this user or root can have made it or replace
// what it holds.
func checkWay(dir, path string, info fs.FileInfo) error {
	st := info.Sys().(*syscall.Stat_t)
	mode := info.Mode()
	unsafe := &CacheError{Problem: CacheUnsafePath, Dir: dir, Path: path, Owner: int(st.Uid), Mode: mode}
	ours := int(st.Uid) == os.Getuid() || st.Uid == 0
	switch {
	case mode&fs.ModeSymlink != 0:
		// A link cannot be changed, only replaced by who can write to the
		// directory holding it, which was checked already.
		if !ours {
			return unsafe
		}
		return nil
	case !info.IsDir():
		return &CacheError{Problem: CacheNotDirectory, Dir: dir, Path: path}
	}
	othersWrite := mode&0o002 != 0 || (mode&0o020 != 0 && int(st.Gid) != os.Getgid())
	if !ours || (othersWrite && mode&fs.ModeSticky == 0) {
		return unsafe
	}
	return nil
}

// check checks that the cache directory's path still leads to the
// directory held, and that it is this user's and closed to group and
// others writing; one they can only read is closed.
func (c *cacheDir) check() error {
	var held, named unix.Stat_t
	if err := unix.Fstat(c.fd, &held); err != nil {
		return &CacheError{Problem: CacheUnreadable, Dir: c.given, Err: err}
	}
	if err := unix.Lstat(c.path, &named); err != nil || !sameFile(held, named) {
		return &CacheError{Problem: CacheReplaced, Dir: c.given, Path: c.path, Err: err}
	}
	perm := fs.FileMode(held.Mode & 0o777)
	switch {
	case int(held.Uid) != os.Getuid():
		return &CacheError{Problem: CacheOtherOwner, Dir: c.given, Owner: int(held.Uid)}
	case perm&0o022 != 0:
		// Someone else could have put files in it already: not ours to trust.
		return &CacheError{Problem: CacheOthersWrite, Dir: c.given, Mode: perm}
	case perm&0o077 != 0:
		// Ours, only readable by others: close it, since the working copy
		// holds the whole database.
		if err := unix.Fchmod(c.fd, 0o700); err != nil {
			return &CacheError{Problem: CacheCannotClose, Dir: c.given, Mode: perm, Err: err}
		}
	}
	return nil
}

func sameFile(a, b unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// file looks at path, a file in the cache directory, through the
// directory held and without following it: exists is false if it does not
// exist; else it is a plain file of this user's with no other link, or an
// error says what it is.
func (c *cacheDir) file(path string) (st unix.Stat_t, exists bool, err error) {
	err = unix.Fstatat(c.fd, filepath.Base(path), &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return st, false, nil
	case err != nil:
		return st, false, &CacheError{Problem: CacheUnreadable, Dir: c.given, Path: path, Err: err}
	}
	return st, true, c.plain(path, st)
}

var fileKinds = map[uint32]string{unix.S_IFDIR: "a directory", unix.S_IFIFO: "a named pipe", unix.S_IFSOCK: "a socket",
	unix.S_IFCHR: "a device", unix.S_IFBLK: "a device"}

func (c *cacheDir) plain(path string, st unix.Stat_t) error {
	bad := func(format string, a ...any) error {
		return &CacheError{Problem: CacheBadFile, Dir: c.given, Path: path, Owner: int(st.Uid), Err: fmt.Errorf(format, a...)}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return &CacheError{Problem: CacheLink, Dir: c.given, Path: path}
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return bad("not a regular file but %s", fileKinds[uint32(st.Mode&unix.S_IFMT)])
	case int(st.Uid) != os.Getuid():
		return bad("owned by user id %d", st.Uid)
	case st.Nlink != 1:
		// A hard link planted while the directory was open would have us
		// write through it just as a symbolic one.
		return bad("linked from %d places", st.Nlink)
	}
	return nil
}

// open opens path, a file in the cache directory, relative to the
// directory held and never through a link: checked before (a named pipe
// would block the open) and after, on what was opened.
func (c *cacheDir) open(path string, flag int) (*os.File, error) {
	if _, _, err := c.file(path); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(c.fd, filepath.Base(path), flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, &CacheError{Problem: CacheLink, Dir: c.given, Path: path}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := c.plain(path, st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func (c *cacheDir) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// checkSlot checks, before an operation, the cache directory and this
// process's files in it, which SQLite and package pagelog open by path.
func (l *Log[C]) checkSlot() error {
	if err := l.cache.check(); err != nil {
		return err
	}
	for _, path := range []string{l.path, l.path + "-wal", l.path + "-shm", metaPath(l.path)} {
		if _, _, err := l.cache.file(path); err != nil {
			return err
		}
	}
	return nil
}

// openedSame checks, once SQLite has opened the working copy by path,
// that the path leads to the file this process last checked and
// fingerprinted through the directory held (l.fp). With checkSlot before
// it, this brackets SQLite's open; between the two, nobody but this user
// or root could have changed the way or the directory.
func (l *Log[C]) openedSame() error {
	if err := l.cache.check(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.path, &st); err != nil || st.Ino != l.fp.ino {
		return &CacheError{Problem: CacheReplaced, Dir: l.cache.given, Path: l.path, Err: err}
	}
	return nil
}

// fingerprint identifies a file's current content cheaply: a rewrite or a
// swap changes at least one of these.
type fingerprint struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// fingerprint is the working copy's, read through the directory held.
func (l *Log[C]) fingerprint() (fingerprint, error) {
	st, exists, err := l.cache.file(l.path)
	if err == nil && !exists {
		err = &os.PathError{Op: "lstat", Path: l.path, Err: fs.ErrNotExist}
	}
	if err != nil {
		return fingerprint{}, err
	}
	return fingerprint{size: st.Size, mtime: time.Unix(st.Mtim.Unix()), ino: uint64(st.Ino)}, nil
}

// A process works on a copy of its own: slot N of the cache directory,
// <prefix>-N.db, held with an exclusive flock on <prefix>-N.lock for the
// life of the log. A later process takes over a free slot, and with it
// the state the last holder left (checked against the checksum in
// <prefix>-N.meta before use).
const maxSlots = 16

// slotMeta is what a slot's holder recorded about its copy.
type slotMeta struct {
	URI      string    `json:"uri"`
	Seq      uint64    `json:"seq"`
	Checksum uint64    `json:"checksum"`
	At       time.Time `json:"confirmed_at"` // when it was last known current
	BaseSeq  uint64    `json:"base_seq"`
	BaseETag string    `json:"base_etag"`
}

// takeSlot locks the first free slot for prefix and returns its paths.
func takeSlot(c *cacheDir, prefix string) (lock *os.File, db string, err error) {
	for n := range maxSlots {
		base := filepath.Join(c.path, fmt.Sprintf("%s-%d", prefix, n))
		f, err := c.open(base+".lock", os.O_RDWR|os.O_CREATE)
		if err != nil {
			if errors.As(err, new(*CacheError)) {
				return nil, "", err // a link, or not a plain file of ours
			}
			return nil, "", &CacheError{Problem: CacheSlotUnusable, Dir: c.given, Err: err}
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return f, base + ".db", nil
	}
	return nil, "", &CacheError{Problem: CacheSlotsInUse, Dir: c.given, Slots: maxSlots}
}

func metaPath(db string) string { return strings.TrimSuffix(db, ".db") + ".meta" }

func (l *Log[C]) readMeta() (slotMeta, error) {
	var m slotMeta
	f, err := l.cache.open(metaPath(l.path), os.O_RDONLY)
	if err != nil {
		return m, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// writeMeta replaces the record whole (a link in its place is replaced,
// never followed).
func writeMeta(db string, m slotMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.Write(metaPath(db), b, 0o600)
}

// removeOldFormat deletes cached copies from builds before the page log
// (<prefix>-<etag>.db with a .sum record). Removing a link removes the
// link, not what it points to.
func removeOldFormat(dir, prefix string) {
	sums, _ := filepath.Glob(filepath.Join(dir, prefix+"-*.db.sum"))
	for _, s := range sums {
		os.Remove(strings.TrimSuffix(s, ".sum"))
		os.Remove(s)
	}
}
