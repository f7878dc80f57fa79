package s3log

// A plan: the objects that take the working copy from its state to the end
// of the log, fetched at once and applied in order as they arrive.

// step is one object of a plan: a delta (first 0) or a merged delta.
type step struct {
	first, seq uint64 // the deltas it covers: first..seq, or seq alone
	size       int64  // as listed
	kind       stepKind
}

type stepKind int

const (
	applied     stepKind = iota // applied to the state held
	base                        // the snapshot's own delta: checks the snapshot
	check                       // the delta a merged delta ended on: checks the state it led to
	speculative                 // a delta past the listing, fetched before it is known to exist
)

func (s step) merged() bool { return s.first != 0 }

// plan is the fewest objects from state at to the delta refs end with
// (refs run at+1, at+2, ... with no gap). A merged delta never ends it:
// the last object is the newest delta, whose base checks the state the
// merged deltas led to.
func plan(at uint64, refs []deltaRef, merged []mergedRef, stop uint64) []step {
	if len(refs) == 0 {
		return nil
	}
	return reach(at, refs, merged, stop, refs[len(refs)-1].seq)
}

// reach is the fewest objects from state at as far as they go: at each
// point, of the objects that apply there (the next delta of refs; a merged
// delta whose span holds the next number, applied over the state held when
// that state is inside its span) the one that reaches furthest, the
// smaller on a tie, a delta rather than a merged delta reaching as far.
// That greedy choice is the fewest: any plan's k-th object reaches no
// further than this one's (interval covering). Merged deltas end before
// before; the plan stops at stop, this machine's confirmed number, if it
// lies on the way, so that state is checked against the confirmed one.
func reach(at uint64, refs []deltaRef, merged []mergedRef, stop, before uint64) []step {
	var end uint64 = at
	if len(refs) > 0 {
		end = refs[len(refs)-1].seq
	}
	steps := make([]step, 0, min(len(refs), 64))
	for p := at; ; {
		var best step
		if p < end {
			ref := refs[p-at]
			best = step{seq: ref.seq, size: ref.size}
		}
		for _, m := range merged {
			if m.first > p+1 {
				break // sorted by first: none further applies here
			}
			if m.last <= p || m.last >= before || (p < stop && m.last > stop) {
				continue
			}
			if m.last > best.seq || (m.last == best.seq && best.merged() && m.size < best.size) {
				best = step{first: m.first, seq: m.last, size: m.size}
			}
		}
		if best.seq == 0 {
			return steps
		}
		steps = append(steps, best)
		p = best.seq
	}
}
