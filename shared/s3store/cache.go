package s3store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The cache holds copies of the database that this process will trust as
// the S3 object after a 304, and will publish changes of. So it must be
// private: a directory that another local user created first, or can write
// to, would let them swap in a database of their choosing.

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
		return licensing.Errorf(licensing.CodeConfig, "refusing the cache directory %s: other users can write to it (mode %04o); chmod 700 it, or set CAIO_LICENSE_CACHE_DIR to a directory of your own", dir, info.Mode().Perm())
	}
	return nil
}

// record is what S3 said about a cached copy, kept beside it
// (<copy>.sum): the copy is used only while it still matches.
type record struct {
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func recordPath(path string) string { return path + ".sum" }

func writeRecord(path string, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.Write(recordPath(path), b, 0o600)
}

func readRecord(path string) (record, error) {
	var r record
	b, err := os.ReadFile(recordPath(path))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// hashingReader computes the SHA-256 and size of what passes through it.
type hashingReader struct {
	r    io.Reader
	h    interface{ Sum([]byte) []byte }
	w    io.Writer
	size int64
}

func newHashingReader(r io.Reader) *hashingReader {
	h := sha256.New()
	return &hashingReader{r: r, h: h, w: h}
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.w.Write(p[:n])
	hr.size += int64(n)
	return n, err
}

func (hr *hashingReader) sum() string { return hex.EncodeToString(hr.h.Sum(nil)) }

func hashFile(path string) (record, error) {
	f, err := os.Open(path)
	if err != nil {
		return record{}, err
	}
	defer f.Close()
	hr := newHashingReader(f)
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return record{}, err
	}
	return record{Size: hr.size, SHA256: hr.sum()}, nil
}

// fingerprint identifies a file's current content cheaply: a rewrite or a
// swap changes at least one of these.
type fingerprint struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func fingerprintOf(info fs.FileInfo) fingerprint {
	fp := fingerprint{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		fp.ino = st.Ino
	}
	return fp
}

// errCacheTampered: a cached copy no longer matches its record.
var errCacheTampered = errors.New("cached copy does not match what S3 said about it")

// trusted checks a cached copy against its record: the size, the ETag, and
// the SHA-256 of the content. The hash is computed once per file per
// process; after that a changed size, mtime or inode forces it again.
func (s *Store) trusted(snap *snapshot) error {
	info, err := os.Stat(snap.path)
	if err != nil {
		return err
	}
	fp := fingerprintOf(info)
	if known, ok := s.verified[snap.path]; ok && known == fp {
		return nil
	}
	rec, err := readRecord(snap.path)
	if err != nil || rec.ETag != snap.etag || rec.Size != info.Size() {
		return errCacheTampered
	}
	got, err := hashFile(snap.path)
	if err != nil {
		return err
	}
	if got.SHA256 != rec.SHA256 || got.Size != rec.Size {
		return errCacheTampered
	}
	s.verified[snap.path] = fp
	return nil
}

// discard removes a cached copy that failed its check.
func (s *Store) discard(snap *snapshot) {
	delete(s.verified, snap.path)
	os.Remove(snap.path)
	os.Remove(recordPath(snap.path))
}
