package s3log

import (
	"context"
	"errors"
	"io"
)

// inFlight is how many objects a catch-up has asked for ahead of the one
// it applies: a cold start's whole plan (at most about 50) in one round
// trip. Each is read only when its turn comes, so however many are in
// flight, one object's bytes are in memory: the others wait in the
// connection (the server's send stalls until they are read).
const inFlight = 64

// fetched is the answer to one GET, its body not yet read.
type fetched struct {
	body io.ReadCloser
	err  error
}

// fetcher asks for the objects of a plan, up to inFlight ahead.
type fetcher struct {
	ctx     context.Context
	get     func(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	keys    []string
	answers []chan fetched
	asked   int // how many were asked for
	taken   int // how many were taken
}

func newFetcher(ctx context.Context, obj Objects, keys []string) *fetcher {
	f := &fetcher{ctx: ctx, get: obj.Get, keys: keys, answers: make([]chan fetched, len(keys))}
	f.askUpTo(inFlight)
	return f
}

func (f *fetcher) askUpTo(n int) {
	for ; f.asked < min(n, len(f.keys)); f.asked++ {
		ch := make(chan fetched, 1)
		f.answers[f.asked] = ch
		key := f.keys[f.asked]
		go func() {
			body, _, err := f.get(f.ctx, key)
			ch <- fetched{body, err}
		}()
	}
}

// next is the answer for the next object, in order.
func (f *fetcher) next() fetched {
	a := <-f.answers[f.taken]
	f.taken++
	f.askUpTo(f.taken + inFlight)
	return a
}

// close closes what was asked for and not taken; the caller cancels the
// context first, so that none of it is waited for long.
func (f *fetcher) close() {
	for ; f.taken < f.asked; f.taken++ {
		if a := <-f.answers[f.taken]; a.body != nil {
			a.body.Close()
		}
	}
}

// run fetches the objects of steps and applies them in order as they
// arrive. refs are the deltas listed (their sizes count toward the
// snapshot's byte rule, whichever objects carry them). Speculative steps
// end the plan: known, when their turn comes, asks how many of them the
// listing found (the rest are dropped unread).
//
// Once a merged delta is applied, the state is checked only by what
// follows (the next delta's base, or the delta it ended on): any failure
// from there on (or of a merged delta itself) is a mergedFailed, and the
// caller starts over with the deltas alone; a failure that is no verdict
// on the log (S3 unavailable) drops the copy, whose state was not yet
// checked.
func (l *Log[C]) run(ctx context.Context, steps []step, refs []deltaRef, known func() int) error {
	if len(steps) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	keys := make([]string, len(steps))
	for i, s := range steps {
		keys[i] = deltaKey(l.key, s.seq)
		if s.merged() {
			keys[i] = mergedKey(l.key, s.first, s.seq)
		}
	}
	f := newFetcher(ctx, l.obj, keys)
	defer func() {
		cancel()
		f.close()
	}()
	limit := l.deltaLimit()
	var unchecked []mergedRef // merged deltas applied, not yet checked by a delta
	ahead := -1               // how many speculative steps the listing found
	for _, s := range steps {
		if s.kind == speculative {
			if ahead < 0 {
				ahead = known()
			}
			if ahead == 0 {
				return nil
			}
			ahead--
		}
		err := l.runStep(s, f.next(), refs, limit)
		if err == nil {
			switch {
			case s.merged():
				unchecked = append(unchecked, mergedRef{first: s.first, last: s.seq})
			case s.kind != base:
				unchecked = nil
			}
			continue
		}
		suspects := unchecked
		if s.merged() {
			suspects = append(suspects, mergedRef{first: s.first, last: s.seq})
		}
		_, damaged := isDamage(err)
		var ce *CorruptError
		switch {
		case len(suspects) > 0 && (damaged || errors.Is(err, ErrNoObject) || errors.As(err, &ce)):
			return &mergedFailed{Seq: s.seq, Suspects: suspects, Err: err}
		case len(unchecked) > 0:
			l.reset()
			return err
		case errors.Is(err, ErrNoObject) && s.kind == speculative:
			// Named by the listing, not found by the GET made before it:
			// written since. The caller fetches it again (beyond).
			return nil
		case errors.Is(err, ErrNoObject) && s.kind == base:
			if err := l.baseMissing(ctx); err != nil {
				return err
			}
			continue
		case errors.Is(err, ErrNoObject):
			// Listed a moment ago, gone now: deleted under us.
			next := s.seq + 1
			if len(refs) > 0 {
				next = max(next, refs[len(refs)-1].seq)
			}
			return &CorruptError{Problem: Gap, Object: l.uri, Delta: true, Seq: s.seq, Next: next}
		}
		return err
	}
	return nil
}

// runStep reads one answer and applies it (or, for a delta that checks,
// checks the state against it).
func (l *Log[C]) runStep(s step, a fetched, refs []deltaRef, limit int64) error {
	if a.err != nil {
		if errors.Is(a.err, ErrNoObject) {
			return a.err
		}
		return Unavailable(a.err)
	}
	raw, err := l.readRaw(a.body, s.seq, limit)
	if err != nil {
		return err
	}
	switch {
	case s.kind == base || s.kind == check:
		d, err := l.decode(s.seq, raw, nil, limit)
		if err != nil {
			return err
		}
		if d.Post == l.st.Checksum {
			return nil
		}
		if s.kind == check {
			return l.badDelta(DoesNotApply, s.seq, errors.New("the merged deltas did not lead to the state it left"))
		}
		return &CorruptError{Problem: SnapshotDisagrees, Object: l.uri, Claimed: l.st.Seq,
			Err: errors.New("its state is not the one its own delta left")}
	case s.merged():
		var pre *uint64
		if s.first == l.st.Seq+1 {
			pre = &l.st.Checksum
		}
		d, err := l.decodeSpan(s.first, s.seq, raw, pre, limit)
		if err != nil {
			return err
		}
		var weight int64
		for _, r := range refs {
			if r.seq > l.st.Seq && r.seq <= s.seq {
				weight += r.size
			}
		}
		return l.applyMerged(&d, weight)
	}
	d, err := l.decode(s.seq, raw, &l.st.Checksum, limit)
	if err != nil {
		return err
	}
	return l.apply(&d)
}
