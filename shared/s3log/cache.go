package s3log

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
)

// The cache holds working copies of the database that a later process
// takes over and publishes changes of. So it must be private: a directory
// that another local user created first, or can write to, would let them
// swap in a database of their choosing.

// prepareCacheDir creates dir (0700) if it is missing and refuses one that
// is not a directory owned by this user and closed to group and others.
func prepareCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &CacheError{Problem: CacheUncreatable, Dir: dir, Err: err}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return &CacheError{Problem: CacheUnreadable, Dir: dir, Err: err}
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	perm := info.Mode().Perm()
	switch {
	case !info.IsDir():
		return &CacheError{Problem: CacheNotDirectory, Dir: dir}
	case ok && int(st.Uid) != os.Getuid():
		return &CacheError{Problem: CacheOtherOwner, Dir: dir, Owner: int(st.Uid)}
	case perm&0o022 != 0:
		// Someone else could have put files in it already: not ours to trust.
		return &CacheError{Problem: CacheOthersWrite, Dir: dir, Mode: perm}
	case perm&0o077 != 0 && isSymlink(dir):
		// Never change modes through a link: someone may have planted it
		// (the default in a shared temporary directory) to point at a
		// directory of ours.
		return &CacheError{Problem: CacheLinkToOpen, Dir: dir, Mode: perm}
	case perm&0o077 != 0:
		// Ours, only readable by others (mkdir under umask 022): close it,
		// since the working copy holds the whole database.
		if err := os.Chmod(dir, 0o700); err != nil {
			return &CacheError{Problem: CacheCannotClose, Dir: dir, Mode: perm, Err: err}
		}
	}
	return nil
}

func isSymlink(path string) bool {
	info, err := os.Lstat(path)
	return err == nil && info.Mode()&os.ModeSymlink != 0
}

// fingerprint identifies a file's current content cheaply: a rewrite or a
// swap changes at least one of these.
type fingerprint struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func fingerprintOf(path string) (fingerprint, error) {
	info, err := os.Stat(path)
	if err != nil {
		return fingerprint{}, err
	}
	fp := fingerprint{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		fp.ino = st.Ino
	}
	return fp, nil
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
func takeSlot(dir, prefix string) (lock *os.File, db string, err error) {
	for n := range maxSlots {
		base := filepath.Join(dir, fmt.Sprintf("%s-%d", prefix, n))
		f, err := os.OpenFile(base+".lock", os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, "", &CacheError{Problem: CacheSlotUnusable, Dir: dir, Err: err}
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return f, base + ".db", nil
	}
	return nil, "", &CacheError{Problem: CacheSlotsInUse, Dir: dir, Slots: maxSlots}
}

func metaPath(db string) string { return strings.TrimSuffix(db, ".db") + ".meta" }

func readMeta(db string) (slotMeta, error) {
	var m slotMeta
	b, err := os.ReadFile(metaPath(db))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func writeMeta(db string, m slotMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.Write(metaPath(db), b, 0o600)
}

// removeOldFormat deletes cached copies from builds before the page log
// (<prefix>-<etag>.db with a .sum record).
func removeOldFormat(dir, prefix string) {
	sums, _ := filepath.Glob(filepath.Join(dir, prefix+"-*.db.sum"))
	for _, s := range sums {
		os.Remove(strings.TrimSuffix(s, ".sum"))
		os.Remove(s)
	}
}
