package sqlitestore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// FileArchive keeps archive files in a directory beside the database:
// <db dir>/<db name>.archive/.
type FileArchive struct{ Dir string }

var _ licensing.Archive = FileArchive{}

// Archive is this database's archive directory.
func (s *Store) Archive() licensing.Archive { return FileArchive{Dir: s.path + ".archive"} }

// Location implements licensing.Archive.
func (a FileArchive) Location() string { return a.Dir }

// Create implements licensing.Archive: the file is written whole and synced
// under a temporary name, then linked to its name, which fails if the name
// exists: created once, never half-written, never replaced.
func (a FileArchive) Create(_ context.Context, name string, data []byte) error {
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return err
	}
	err := atomicfile.Create(filepath.Join(a.Dir, name), data, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return licensing.ErrArchiveExists
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(a.Dir); err == nil {
		d.Sync() // the new name is durable too
		d.Close()
	}
	return nil
}

// Read implements licensing.Archive.
func (a FileArchive) Read(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(a.Dir, name))
}

// Size is the database's size on disk (the file and its WAL).
func (s *Store) Size(context.Context) (int64, error) {
	var total int64
	for _, suffix := range []string{"", "-wal"} {
		if info, err := os.Stat(s.path + suffix); err == nil {
			total += info.Size()
		}
	}
	return total, nil
}

// Vacuum rebuilds the file without its free pages, so that a smaller
// database is also a smaller file (and, in S3 mode, a smaller upload).
func (s *Store) Vacuum(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, "VACUUM"); err != nil {
		return s.mapOpenError(err)
	}
	if s.mode == modePageLog {
		return nil // the S3 store publishes the WAL's pages, then checkpoints
	}
	_, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// FreeBytes is the space of the file's free pages.
func (s *Store) FreeBytes(ctx context.Context) (int64, error) {
	var free, size int64
	err := s.db.QueryRowContext(ctx, "SELECT (SELECT freelist_count FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)").Scan(&free, &size)
	return free * size, err
}
