package s3log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// Replace publishes the database file src as the next state: a delta
// holding every page, numbered after the log's end and applying to the
// state there, and the snapshot at that number. The state it replaces is
// caught up on pages only and never opened: a state that fails the
// schema check (a trigger planted by a delta) can still be replaced by a
// backup. The caller checks src first.
func (l *Log[C]) Replace(ctx context.Context, src string) error {
	l.bg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkSlot(); err != nil {
		return err
	}
	if l.loaded {
		if fp, err := l.fingerprint(); err != nil || fp != l.fp {
			l.reset()
		}
	}
	if !l.loaded {
		if err := l.load(ctx); err != nil {
			return &SyncError{err}
		}
	}
	if err := l.catchUpOnce(ctx); err != nil {
		return &SyncError{err}
	}
	l.closeCopy()
	dir, err := os.MkdirTemp(l.cacheDir, ".replace-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	image := filepath.Join(dir, "image.db")
	if err := copyFile(src, image); err != nil {
		return err
	}
	if err := pagelog.Normalize(image); err != nil {
		return err
	}
	d, err := fullImage(image)
	if err != nil {
		return err
	}
	if held, err := heldPageSize(l.path); err == nil && held != d.PageSize {
		return fmt.Errorf("%s has %d-byte pages and the database %d: make the backup with 'manage-licenses backup'", src, d.PageSize, held)
	}
	now := time.Now().UTC()
	d.Seq, d.Pre, d.OpID, d.Time = l.st.Seq+1, l.st.Checksum, randomID(), now
	if err := l.publish(ctx, &d); err != nil {
		return err
	}
	// The copy held the replaced state: the next operation starts from the
	// snapshot below (or, if it did not land, from the delta).
	l.reset()
	l.confirmed = confirmedState{Seq: d.Seq, Checksum: d.Post, At: now}
	info, err := l.obj.Head(ctx, l.key)
	if err != nil {
		return nil // published; a snapshot is an optimisation
	}
	current, _, _ := snapshotMeta(info.Meta)
	l.snapshot(ctx, image, slotMeta{URI: l.uri, Seq: d.Seq, Checksum: d.Post, At: now, BaseSeq: current, BaseETag: info.ETag})
	return nil
}

func heldPageSize(path string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	header := make([]byte, 100)
	if _, err := io.ReadFull(f, header); err != nil {
		return 0, err
	}
	return pagelog.PageSizeOf(header)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(err, os.Remove(dst))
	}
	return nil
}
