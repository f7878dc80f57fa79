package s3log

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Merged deltas. A cold start would otherwise read every delta since the
// snapshot, up to a thousand, 32 at a time. Every 16 deltas are also
// merged into one, every 16 of those into one of 256, and every 16 of
// those into one of 4,096 (levels 1 to 3, as Litestream 0.5 compacts its
// LTX files), at names that say which deltas they merge:
//
//	KEY.log.merged/<first, 20 digits>-<last, 20 digits>
//
// a span of 16^k deltas starting after a multiple of it (first-1 = j·16^k).
// A merged delta is a delta in the pagelog format from the state before
// first to the state after last, which records first (pagelog.Merger).
// All levels share one prefix, so that one listing shows them all.
//
// They are written with put-if-absent, like deltas: by the writer that
// commits the last delta of a span, in the background of its write (under
// SnapshotOnRequest, which the Lambda functions use, right after its
// commit, before the write returns: Lambda freezes a process once it has
// answered); a failure never fails the write; and by PublishSnapshot for
// any that is missing. Every process that writes deltas may write them.
//
// The deltas stay the truth. A reader plans its way from its state to the
// end of the log through the fewest objects (plan.go), and checks every
// merged delta as it checks a delta: its name, its number and first, the
// state it leads to (before a page is written), and the chain: the last
// object applied is always a delta, whose base must be the state the
// merged deltas led to. A merged delta missing, damaged, forged or not
// leading to that state sends the reader back to its snapshot and the
// deltas alone, which then apply or are refused as they always were (a
// gap stays a gap: the listing of the deltas is read either way, its
// first page; past it, beyond lists from where the merged deltas reach,
// so a delta deleted under one applied there is not seen, though the
// state reached is whole: see docs/design.md).

// mergeFanIn is how many objects of one level a merged delta of the next
// merges; mergeLevels how many levels there are.
const (
	mergeFanIn  = 16
	mergeLevels = 3
)

// levelSpan is the number of deltas a merged delta of level k covers.
func levelSpan(k int) uint64 {
	span := uint64(1)
	for range k {
		span *= mergeFanIn
	}
	return span
}

func mergedPrefix(key string) string { return key + ".log.merged/" }

func mergedKey(key string, first, last uint64) string {
	return fmt.Sprintf("%s%020d-%020d", mergedPrefix(key), first, last)
}

// mergedRef is a merged delta a listing named.
type mergedRef struct {
	first, last uint64
	size        int64
}

// parseMerged reads a merged delta's span from its key: only the names
// the log writes count (20 digits each, a span of a level, aligned).
func parseMerged(key string) (mergedRef, bool) {
	name := key[strings.LastIndex(key, "/")+1:]
	a, b, ok := strings.Cut(name, "-")
	if !ok || !digits20(a) || !digits20(b) {
		return mergedRef{}, false
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return mergedRef{}, false
	}
	for k := 1; k <= mergeLevels; k++ {
		if span := levelSpan(k); last-first+1 == span && (first-1)%span == 0 {
			return mergedRef{first: first, last: last}, true
		}
	}
	return mergedRef{}, false
}

func digits20(s string) bool {
	return len(s) == 20 && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// listMerged lists the merged deltas that reach past seq and start no
// earlier than the level-2 span holding seq+1: what a plan from seq can
// use. (A level-3 delta holding seq+1 is left out: listing from its start
// would cost up to 272 names of no use.) Names that are no merged delta's
// are passed over: what is here is never needed, so junk can cost a
// reader a longer listing but never a refusal.
func (l *Log[C]) listMerged(ctx context.Context, seq uint64) ([]mergedRef, error) {
	from := seq / levelSpan(2) * levelSpan(2) // first-1 of the level-2 span holding seq+1
	objs, err := l.obj.ListAfter(ctx, mergedPrefix(l.key), fmt.Sprintf("%s%020d", mergedPrefix(l.key), from))
	if err != nil {
		return nil, Unavailable(err)
	}
	var out []mergedRef
	for _, o := range objs {
		if m, ok := parseMerged(o.Key); ok && m.last > seq && m.first > from && !l.distrusted[[2]uint64{m.first, m.last}] {
			m.size = o.Size
			out = append(out, m)
		}
	}
	sortMerged(out)
	return out, nil
}

// sortMerged orders merged deltas by their first delta, as plans read them.
func sortMerged(m []mergedRef) {
	slices.SortFunc(m, func(a, b mergedRef) int { return cmp.Compare(a.first, b.first) })
}

// distrust records merged deltas this process passes over from now on: at
// most maxDistrusted (the oldest are forgotten first; they are behind the
// snapshots by then).
func (l *Log[C]) distrust(m []mergedRef) {
	for _, r := range m {
		if l.distrusted == nil {
			l.distrusted = map[[2]uint64]bool{}
		}
		if len(l.distrusted) >= maxDistrusted {
			clear(l.distrusted)
		}
		l.distrusted[[2]uint64{r.first, r.last}] = true
	}
}

const maxDistrusted = 1024
