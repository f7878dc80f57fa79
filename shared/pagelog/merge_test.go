package pagelog_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// A merged delta, encoded and decoded, applied to the state before its
// first delta (Apply) or to any state within its span (ApplyOver), gives
// the writer's file byte for byte, across a VACUUM that shrinks the file
// and writes that grow it again. Applied to a state outside its span it
// is refused, and nothing is written.
func TestMergedDeltaReproducesTheWritersFile(t *testing.T) {
	dir := t.TempDir()
	writer := filepath.Join(dir, "w.db")
	db := openWAL(t, writer)
	exec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	checkpoint(t, db)
	const n = 12
	states := make([][]byte, n+1) // states[i]: the file after delta i
	sums := make([]uint64, n+1)
	states[0], _ = os.ReadFile(writer)
	sums[0], _ = pagelog.Checksum(writer)
	deltas := make([]pagelog.Delta, n+1)
	for seq := uint64(1); seq <= n; seq++ {
		stmt := fmt.Sprintf("INSERT INTO t (v) SELECT hex(randomblob(300)) FROM generate_series(1, %d)", seq*15)
		switch seq {
		case 5:
			stmt = "DELETE FROM t WHERE id > 10"
		case 6:
			stmt = "VACUUM" // cuts pages off: the merge must drop them
		}
		exec(t, db, stmt)
		ps, pages, size, err := pagelog.ReadWAL(writer + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(writer)
		post, err := pagelog.Post(f, ps, sums[seq-1], pages, size)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		deltas[seq] = pagelog.Delta{Seq: seq, PageSize: ps, Pages: size, Pre: sums[seq-1], Post: post, OpID: "op", Changed: pages}
		checkpoint(t, db)
		states[seq], _ = os.ReadFile(writer)
		sums[seq] = post
	}
	if len(states[6]) >= len(states[4]) {
		t.Fatalf("VACUUM did not shrink the file: %d -> %d", len(states[4]), len(states[6]))
	}
	reader := filepath.Join(dir, "r.db")
	refused := 0
	for _, span := range [][2]int{{1, 12}, {3, 8}, {5, 7}, {7, 12}, {10, 12}} {
		first, last := span[0], span[1]
		m := mergeOf(t, deltas[first:last+1]...)
		if m.First != uint64(first) || m.Seq != uint64(last) || m.Pre != sums[first-1] || m.Post != sums[last] {
			t.Fatalf("merge %d-%d: header %+v", first, last, m)
		}
		os.WriteFile(reader, states[first-1], 0o600)
		if err := pagelog.Apply(reader, sums[first-1], m); err != nil {
			t.Fatalf("merge %d-%d on state %d: %v", first, last, first-1, err)
		}
		sameFile(t, reader, states[last], fmt.Sprintf("merge %d-%d on state %d", first, last, first-1))
		for from := first; from <= last; from++ {
			os.WriteFile(reader, states[from], 0o600)
			if err := pagelog.ApplyOver(reader, sums[from], m); err != nil {
				t.Fatalf("merge %d-%d over state %d: %v", first, last, from, err)
			}
			sameFile(t, reader, states[last], fmt.Sprintf("merge %d-%d over state %d", first, last, from))
		}
		if first > 1 {
			// A state before the span: unless the merge rewrote every page
			// that changed since (the VACUUM does), the result is not the
			// recorded state, and nothing is written.
			os.WriteFile(reader, states[first-2], 0o600)
			if err := pagelog.ApplyOver(reader, sums[first-2], m); err != nil {
				refused++
				sameFile(t, reader, states[first-2], "a refused merge")
			} else {
				sameFile(t, reader, states[last], fmt.Sprintf("merge %d-%d over state %d", first, last, first-2))
			}
		}
	}
	if refused == 0 {
		t.Fatal("no merge was refused over a state before its span")
	}
	// Deltas that do not follow each other do not merge.
	var bad pagelog.Merger
	bad.Add(deltas[1])
	if err := bad.Add(deltas[3]); err == nil {
		t.Fatal("deltas 1 and 3 merged")
	}
	if err := pagelog.ApplyOver(reader, sums[0], deltas[1]); err == nil {
		t.Fatal("ApplyOver took a plain delta")
	}
}

func mergeOf(t testing.TB, ds ...pagelog.Delta) pagelog.Delta {
	t.Helper()
	var m pagelog.Merger
	for _, d := range ds {
		if err := m.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	d, err := m.Delta()
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, d)
}

// roundTrip is d as a reader gets it: encoded, then decoded.
func roundTrip(t testing.TB, d pagelog.Delta) pagelog.Delta {
	t.Helper()
	enc, err := pagelog.Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pagelog.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sameFile(t testing.TB, path string, want []byte, what string) {
	t.Helper()
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: the file differs from the writer's (%d bytes, want %d)", what, len(got), len(want))
	}
}
