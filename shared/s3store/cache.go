package s3store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The cache holds working copies of the database that a later process
// takes over and publishes changes of. So it must be private: a directory
// that another local user created first, or can write to, would let them
// swap in a database of their choosing.

// DefaultCacheDir is the per-user cache directory: the OS user cache
// directory (XDG_CACHE_HOME, else ~/.cache), or, where there is no home (a
// Lambda function), a directory per user id in the temp dir.
func DefaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "caio-licensing")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("caio-licensing-%d", os.Getuid()))
}

// prepareCacheDir creates dir (0700) if it is missing and refuses one that
// is not a directory owned by this user and closed to group and others.
func prepareCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return licensing.Wrap(licensing.CodeConfig, err, "cannot create the cache directory %s: set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return licensing.Wrap(licensing.CodeConfig, err, "cannot use the cache directory %s: set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case !info.IsDir():
		return licensing.Errorf(licensing.CodeConfig, "the cache directory %s is not a directory: set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir)
	case ok && int(st.Uid) != os.Getuid():
		return licensing.Errorf(licensing.CodeConfig, "refusing the cache directory %s: it belongs to user id %d, not to you (%d); another user could replace the cached database. Remove it, or set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir, st.Uid, os.Getuid())
	case info.Mode().Perm()&0o022 != 0:
		// Someone else could have put files in it already: not ours to trust.
		return licensing.Errorf(licensing.CodeConfig, "refusing the cache directory %s: other users can write to it (mode %04o); remove it, or set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir, info.Mode().Perm())
	case info.Mode().Perm()&0o077 != 0 && isSymlink(dir):
		// Never change modes through a link: someone may have planted it
		// (the default in a shared temporary directory) to point at a
		// directory of ours.
		return licensing.Errorf(licensing.CodeConfig, "refusing the cache directory %s: a symbolic link to a directory open to group or others (mode %04o); chmod 700 the directory it points to, or set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir, info.Mode().Perm())
	case info.Mode().Perm()&0o077 != 0:
		// Ours, only readable by others (mkdir under umask 022): close it,
		// since the working copy holds every license and sealed key.
		if err := os.Chmod(dir, 0o700); err != nil {
			return licensing.Wrap(licensing.CodeConfig, err, "the cache directory %s is open to other users (mode %04o) and cannot be closed: chmod 700 it", dir, info.Mode().Perm())
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
// life of the store. A later process takes over a free slot, and with it
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
			return nil, "", licensing.Wrap(licensing.CodeConfig, err, "cannot use the cache directory %s: %v; set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return f, base + ".db", nil
	}
	return nil, "", licensing.Errorf(licensing.CodeBusy, "all %d working copies in the cache directory %s are in use by other processes: retry shortly, or give this process its own CAIO_LICENSE_CACHE_DIR", maxSlots, dir)
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
