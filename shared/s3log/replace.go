package s3log

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
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
	if _, err := l.prepare(ctx); err != nil {
		return &SyncError{err}
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
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	err = atomicfile.WriteFrom(image, in, 0o600)
	in.Close()
	if err != nil {
		return err
	}
	if err := pagelog.Normalize(image); err != nil {
		return err
	}
	d, err := fullImage(image)
	if err != nil {
		return err
	}
	if held, err := l.heldPageSize(); err == nil && held != d.PageSize {
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

// heldPageSize is the working copy's page size.
func (l *Log[C]) heldPageSize() (uint32, error) {
	f, err := l.cache.open(l.path, os.O_RDONLY)
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
