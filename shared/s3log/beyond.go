package s3log

import (
	"context"
	"math"
	"os"
	"slices"
	"time"
)

// tailAhead is how many deltas past the merged deltas a cold start fetches
// before it knows they exist: the writers merge every 16, so that many
// are the most that follow the newest merged delta while merges keep up.
const tailAhead = mergeFanIn

// beyond is a cold catch-up past the first page of the listing (more than
// a thousand deltas since the snapshot): listing on would cost a round
// trip a thousand deltas. The merged deltas reach as far as they go (to
// E); in the third round trip, with them, go the listing of the deltas
// after E, delta E (which checks the state the merged deltas led to) and
// the tailAhead deltas after E, fetched before the listing says they
// exist. Those it names are applied; what it names past them is fetched
// then (merges lagging), and so is one it names that its GET, made before
// the listing, did not find (written meanwhile: not a gap); a gap the
// listing shows is a gap.
func (l *Log[C]) beyond(ctx context.Context, steps []step, refs []deltaRef, merged []mergedRef, stop uint64) error {
	ahead := reach(l.st.Seq, refs, merged, stop, math.MaxUint64)
	end := ahead[len(ahead)-1].seq
	var tail []deltaRef
	var tailErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		tail, tailErr = l.listDeltas(ctx, end)
	}()
	steps = append(steps, ahead...)
	if ahead[len(ahead)-1].merged() {
		steps = append(steps, step{seq: end, kind: check})
	}
	for i := range uint64(tailAhead) {
		steps = append(steps, step{seq: end + 1 + i, kind: speculative})
	}
	var gap error
	known := func() int {
		<-listed
		if tailErr != nil {
			return 0
		}
		tail, gap = l.sound(end, tail)
		return min(len(tail), tailAhead)
	}
	l.closeCopy()
	os.Remove(l.path + "-wal")
	defer l.remember()
	err := l.run(ctx, steps, refs, known)
	<-listed
	switch {
	case err != nil:
		return err
	case tailErr != nil:
		return tailErr
	}
	// What the listing names past what was applied is fetched now: the
	// deltas past the tailAhead fetched ahead (merges lagging), and one
	// written after its GET ahead found nothing (run stops there).
	if i := slices.IndexFunc(tail, func(r deltaRef) bool { return r.seq > l.st.Seq }); i >= 0 {
		if err := l.run(ctx, plan(l.st.Seq, tail[i:], nil, stop), tail, nil); err != nil {
			return err
		}
	}
	if gap != nil {
		return gap
	}
	l.st.At = time.Now() // known current
	return l.confirm()
}
