package s3log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// Writing merged deltas (merged.go says what they are).

// maybeMerge merges the spans delta d ends, in the background of the
// write that committed it (under SnapshotOnRequest, before it returns): a
// failure never fails the write, and PublishSnapshot makes what is
// missing. A writer that holds the span's deltas (it committed or applied
// each of them) merges them without a request but the PUT. One merge runs
// at a time; the spans that end while it runs wait their turn, with their
// deltas (a few: past that, the publisher's).
func (l *Log[C]) maybeMerge(d *pagelog.Delta) {
	if d.Seq%mergeFanIn != 0 {
		return
	}
	job := mergeJob{seq: d.Seq, held: []pagelog.Delta{*d}}
	if r := l.recent; len(r) == mergeFanIn && r[len(r)-1].Seq == d.Seq {
		job.held = r
	}
	limit := l.deltaLimit()
	if l.snapshots == SnapshotOnRequest {
		// A process Lambda freezes once it has answered (the functions)
		// would leave a background merge half sent: it merges before the
		// write returns, after its commit (one PUT from memory, every 16
		// writes), and a failure still leaves the write committed.
		ctx, cancel := context.WithTimeout(context.Background(), inlineMergeTimeout)
		defer cancel()
		l.mergeEnds(ctx, job, limit)
		return
	}
	if l.mergeBusy {
		if len(l.mergeQueue) < maxMergeQueue {
			l.mergeQueue = append(l.mergeQueue, job)
		}
		return
	}
	l.mergeBusy = true
	l.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for {
			l.mergeEnds(ctx, job, limit)
			l.mu.Lock()
			if len(l.mergeQueue) == 0 {
				l.mergeBusy = false
				l.mu.Unlock()
				return
			}
			job = l.mergeQueue[0]
			l.mergeQueue = l.mergeQueue[1:]
			l.mu.Unlock()
		}
	})
}

// mergeJob is a span's last delta and the deltas of the span the writer
// holds, ending with it.
type mergeJob struct {
	seq  uint64
	held []pagelog.Delta
}

// maxMergeQueue bounds the spans waiting for a writer's merge (each with
// at most recentBytes of pages).
const maxMergeQueue = 4

// inlineMergeTimeout bounds a merge made before a write returns.
const inlineMergeTimeout = 10 * time.Second

// keepRecent records d, the delta just committed or applied, among the
// deltas of the current level-1 span, for the merge at its end: a warm
// writer then merges from memory. At most recentBytes of pages are kept;
// a span this process did not see whole is fetched instead.
func (l *Log[C]) keepRecent(d *pagelog.Delta) {
	r := l.recent
	switch {
	case d.Seq%mergeFanIn == 1:
		r = r[:0:0]
	case len(r) == 0 || r[len(r)-1].Seq != d.Seq-1:
		l.recent = nil
		return
	}
	size := int64(0)
	for _, x := range r {
		size += int64(len(x.Changed)) * int64(x.PageSize)
	}
	if size+int64(len(d.Changed))*int64(d.PageSize) > recentBytes {
		l.recent = nil
		return
	}
	l.recent = append(r, *d)
}

// recentBytes bounds the pages keepRecent holds.
const recentBytes = 16 << 20

// mergeEnds makes the merged deltas of every level whose span the job's
// delta ends, lowest first (each level merges the one below).
func (l *Log[C]) mergeEnds(ctx context.Context, job mergeJob, limit int64) {
	for k := 1; k <= mergeLevels && job.seq%levelSpan(k) == 0; k++ {
		if err := l.merge(ctx, k, job.seq-levelSpan(k)+1, job.held, limit); err != nil {
			return
		}
	}
}

// errMissingPart: a merged delta of the level below is not there yet.
var errMissingPart = errors.New("a part of the merge is missing")

// merge makes the merged delta of level k starting at first, from the 16
// objects of the level below (deltas, for level 1), and creates it if
// absent. held are the span's last deltas (ending at its last) as far as
// the caller holds them: fetched are only the others. Merged deltas from
// the level below are checked as a reader checks them, and the result
// must run from the state before the span's first delta to the state
// after its last, as those deltas record: a forged or damaged part is
// never passed on.
func (l *Log[C]) merge(ctx context.Context, k int, first uint64, held []pagelog.Delta, limit int64) error {
	span, sub := levelSpan(k), levelSpan(k-1)
	last := first + span - 1
	var own *pagelog.Delta // the span's last delta, held
	if len(held) > 0 && held[len(held)-1].Seq == last {
		own = &held[len(held)-1]
	}
	if k > 1 || own == nil {
		held = nil // a level above merges merged deltas; held must end the span
	}
	type part struct{ first, seq uint64 }
	var parts []part
	for p := first; p <= last-uint64(len(held))*sub; p += sub {
		if sub == 1 {
			parts = append(parts, part{0, p})
		} else {
			parts = append(parts, part{p, p + sub - 1})
		}
	}
	// The deltas at the ends anchor a merge of merged deltas to the log.
	anchored := k > 1
	if anchored {
		parts = append(parts, part{0, first})
		if own == nil {
			parts = append(parts, part{0, last})
		}
	}
	keys := make([]string, len(parts))
	for i, p := range parts {
		keys[i] = deltaKey(l.key, p.seq)
		if p.first != 0 {
			keys[i] = mergedKey(l.key, p.first, p.seq)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	f := newFetcher(ctx, l.obj, keys)
	defer func() {
		cancel()
		f.close()
	}()
	var m pagelog.Merger
	var pre, post uint64
	if own != nil {
		post = own.Post
	}
	for i, p := range parts {
		a := f.next()
		if a.err != nil {
			if errors.Is(a.err, ErrNoObject) {
				return errMissingPart
			}
			return Unavailable(a.err)
		}
		raw, err := l.readRaw(a.body, p.seq, limit)
		if err != nil {
			return err
		}
		d, err := l.decodeSpan(p.first, p.seq, raw, nil, limit)
		if err != nil {
			return err
		}
		switch {
		case anchored && p.first == 0 && p.seq == first && i >= mergeFanIn:
			pre = d.Pre
		case anchored && p.first == 0 && i >= mergeFanIn:
			post = d.Post
		default:
			if i == 0 {
				pre = d.Pre
			}
			if err := m.Add(d); err != nil {
				return err
			}
		}
	}
	for i, d := range held {
		if i == 0 && len(parts) == 0 {
			pre = d.Pre
		}
		if err := m.Add(d); err != nil {
			return err
		}
	}
	d, err := m.Delta()
	if err != nil {
		return err
	}
	if d.First != first || d.Seq != last || d.Pre != pre || (post != 0 && d.Post != post) {
		return fmt.Errorf("merged delta %d-%d does not run from the state before delta %d to the state after delta %d", first, last, first, last)
	}
	enc, err := pagelog.Encode(d)
	if err != nil {
		return err
	}
	_, err = l.obj.Put(ctx, mergedKey(l.key, first, last), bytes.NewReader(enc), int64(len(enc)), PutOptions{IfAbsent: true})
	if errors.Is(err, ErrPreconditionFailed) {
		return nil // another writer made it
	}
	return err
}

// fillMerged makes the merged deltas missing after the snapshot at
// snapSeq, up to the working copy's state, lowest level first (a level
// merges the one below), at most max of them. It reports how many it made.
func (l *Log[C]) fillMerged(ctx context.Context, snapSeq uint64, max int) (int, error) {
	have, err := l.listMerged(ctx, snapSeq)
	if err != nil {
		return 0, err
	}
	exists := map[[2]uint64]bool{}
	for _, m := range have {
		exists[[2]uint64{m.first, m.last}] = true
	}
	for k := range l.distrusted { // there, though passed over
		exists[k] = true
	}
	limit, made := l.deltaLimit(), 0
	for k := 1; k <= mergeLevels; k++ {
		span := levelSpan(k)
		for first := snapSeq/span*span + 1; first+span-1 <= l.st.Seq; first += span {
			if exists[[2]uint64{first, first + span - 1}] {
				continue
			}
			if made == max {
				return made, nil
			}
			if err := l.merge(ctx, k, first, nil, limit); err != nil {
				if errors.Is(err, errMissingPart) {
					continue // a part below could not be made
				}
				return made, err
			}
			made++
		}
	}
	return made, nil
}
