package s3log

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
)

// maybeSnapshot publishes the working copy as the snapshot, in the
// background, when enough deltas follow the last one: a cold start then
// reads a bounded number of deltas, and a failed snapshot never fails or
// delays the write that triggered it.
func (l *Log[C]) maybeSnapshot() {
	if l.bgBusy {
		return
	}
	fp, err := l.fingerprint()
	if err != nil {
		return
	}
	if l.st.Seq-l.st.BaseSeq < l.snapshotEvery && l.bytes < fp.size {
		return
	}
	// A private copy: the working copy moves on while this uploads.
	tmp, err := os.CreateTemp(l.cacheDir, ".snapshot-*.db")
	if err != nil {
		return
	}
	tmp.Close()
	src, err := l.cache.open(l.path, os.O_RDONLY)
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	err = atomicfile.WriteFrom(tmp.Name(), src, 0o600)
	src.Close()
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	st := l.st
	l.bgBusy = true
	l.bg.Go(func() {
		defer os.Remove(tmp.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		baseSeq, baseETag, ok := l.snapshot(ctx, tmp.Name(), st)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.bgBusy = false
		if ok && baseSeq >= l.st.BaseSeq {
			l.st.BaseSeq, l.st.BaseETag = baseSeq, baseETag
			if baseSeq == st.Seq {
				l.bytes = 0
			}
		}
	})
}

// snapshot uploads path (state st) as KEY, If-Match the snapshot st knew,
// and copies it into the history. It reports the newest snapshot it saw.
func (l *Log[C]) snapshot(ctx context.Context, path string, st slotMeta) (uint64, string, bool) {
	etag, err := l.putFile(ctx, path, l.key, st.BaseETag, st.Seq, st.Checksum, st.At)
	if errors.Is(err, ErrPreconditionFailed) {
		// Another process published a snapshot meanwhile: keep the newer.
		info, err := l.obj.Head(ctx, l.key)
		if err != nil {
			return 0, "", false
		}
		seq, _, err := snapshotMeta(info.Meta)
		if err != nil {
			return 0, "", false
		}
		if seq >= st.Seq {
			return seq, info.ETag, true
		}
		if etag, err = l.putFile(ctx, path, l.key, info.ETag, st.Seq, st.Checksum, st.At); err != nil {
			return 0, "", false
		}
	} else if err != nil {
		return 0, "", false
	}
	l.obj.Copy(ctx, l.key, etag, historyKey(l.key, st.Seq))
	return st.Seq, etag, true
}
