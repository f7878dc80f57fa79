// Package atomicfile writes a file whole or not at all: a reader (or a
// crash) never sees it half-written.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes data to path with mode perm through a temporary file beside
// it, synced, then renamed over path.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFrom(path, bytes.NewReader(data), perm)
}

// WriteFrom is Write for data streamed from r.
func WriteFrom(path string, r io.Reader, perm os.FileMode) error {
	return WriteWith(path, perm, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// WriteWith is Write for a producer that must write a path itself (SQLite's
// VACUUM INTO): fn writes tmp, a fresh name in a private directory (0700,
// random name, created exclusively) beside path, so that nobody else can
// place a file or a symlink there first; the result is synced and renamed
// over path (a symlink at path is replaced, never followed).
func WriteWith(path string, perm os.FileMode, fn func(tmp string) error) error {
	return write(path, perm, fn, os.Rename)
}

// write has fn write tmp, syncs it and publishes it at path.
func write(path string, perm os.FileMode, fn func(tmp string) error, publish func(tmp, path string) error) error {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "file")
	if err := fn(tmp); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return publish(tmp, path)
}

// Create writes data to path with mode perm unless path exists
// (fs.ErrExist): the file is written whole and synced under a temporary
// name, then linked to path, which fails if the name is taken. A file
// created this way is never half-written and never replaced.
func Create(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, func(tmp string) error { return os.WriteFile(tmp, data, 0o600) }, os.Link)
}
