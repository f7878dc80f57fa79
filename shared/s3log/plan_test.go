package s3log

import (
	"fmt"
	"testing"
)

func refsFrom(at, end uint64) []deltaRef {
	var refs []deltaRef
	for s := at + 1; s <= end; s++ {
		refs = append(refs, deltaRef{seq: s, size: 100})
	}
	return refs
}

// every merged delta of every level within 1..end.
func allMerged(end uint64) []mergedRef {
	var out []mergedRef
	for first := uint64(1); first <= end; first++ {
		for k := 1; k <= mergeLevels; k++ {
			if span := levelSpan(k); (first-1)%span == 0 && first+span-1 <= end {
				out = append(out, mergedRef{first: first, last: first + span - 1, size: int64(span) * 50})
			}
		}
	}
	sortMerged(out)
	return out
}

func describe(steps []step) string {
	s := ""
	for _, st := range steps {
		if st.merged() {
			s += fmt.Sprintf(" %d-%d", st.first, st.seq)
		} else {
			s += fmt.Sprintf(" %d", st.seq)
		}
	}
	return s
}

// A plan covers every number from the state held to the end, one object
// after another, ends with a delta, never jumps over the confirmed number,
// and takes few objects whatever the number of deltas.
func TestPlanIsShortAndEndsWithADelta(t *testing.T) {
	for _, c := range []struct {
		at, end, stop uint64
		most          int
	}{
		{0, 10, 0, 10}, {3, 1003, 0, 35}, {250, 1250, 0, 35}, {5, 5000, 0, 50}, {4000, 9000, 0, 50},
		{100, 1000, 500, 50}, {17, 33, 0, 2}, {16, 32, 0, 16},
	} {
		steps := plan(c.at, refsFrom(c.at, c.end), allMerged(c.end), c.stop)
		p := c.at
		for _, s := range steps {
			lo := s.seq
			if s.merged() {
				lo = s.first
			}
			if lo > p+1 || s.seq <= p {
				t.Fatalf("from %d to %d: %s does not follow %d", c.at, c.end, describe(steps), p)
			}
			if c.stop > p && s.seq > c.stop {
				t.Fatalf("from %d to %d: %s jumps over %d", c.at, c.end, describe(steps), c.stop)
			}
			p = s.seq
		}
		if p != c.end || steps[len(steps)-1].merged() {
			t.Fatalf("from %d to %d: %s", c.at, c.end, describe(steps))
		}
		if len(steps) > c.most {
			t.Errorf("from %d to %d: %d objects (%s), want at most %d", c.at, c.end, len(steps), describe(steps), c.most)
		}
	}
}

// Names that are no merged delta's are passed over.
func TestMergedNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"k.log.merged/00000000000000000001-00000000000000000016": true,
		"k.log.merged/00000000000000000017-00000000000000000032": true,
		"k.log.merged/00000000000000000001-00000000000000000256": true,
		"k.log.merged/00000000000000004097-00000000000000008192": true,
		"k.log.merged/00000000000000000002-00000000000000000017": false, // not aligned
		"k.log.merged/00000000000000000001-00000000000000000017": false, // no level's span
		"k.log.merged/1-16": false,
		"k.log.merged/00000000000000000000-00000000000000000015":   false,
		"k.log.merged/00000000000000000001-00000000000000000016.x": false,
	} {
		if _, got := parseMerged(name); got != ok {
			t.Errorf("%s: %v, want %v", name, got, ok)
		}
	}
}
