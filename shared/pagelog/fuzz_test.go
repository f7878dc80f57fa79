package pagelog_test

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// realDeltas are deltas of SQLite transactions, captured as
// TestDeltaReproducesTheWritersFile captures them.
func realDeltas(tb testing.TB) [][]byte {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "w.db")
	db := openWAL(tb, path)
	defer db.Close()
	exec(tb, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	checkpoint(tb, db)
	cur, err := pagelog.Checksum(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for seq, q := range []string{
		"INSERT INTO t (v) VALUES ('a')",
		"INSERT INTO t (v) SELECT hex(randomblob(100)) FROM generate_series(1, 20)",
		"DELETE FROM t WHERE id % 2 = 0",
	} {
		d := capture(tb, db, path, cur, uint64(seq+1), q)
		checkpoint(tb, db)
		enc, err := pagelog.Encode(d)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, enc)
		cur = d.Post
	}
	return out
}

// FuzzDecode feeds the decoder deltas made of an arbitrary header and
// pages, signed: the SHA-256 trailer guards against damage, not forgery,
// and a mutation it caught would test nothing else. The pages come either
// as a compressed stream, as is, or inflated, for the fuzzer to change
// page numbers and lengths that a mutated stream would hardly reach.
// Invariants: no panic; every refusal wraps ErrCorrupt; a decode
// allocates no more than its input can inflate to (deflate expands at
// most 1032-fold) plus a fixed 1 MiB, whatever the header claims; what
// decodes is in order and within its declared sizes, is what the stream
// inflates to, honours a limit to the byte, and re-encodes to the same
// header and pages.
func FuzzDecode(f *testing.F) {
	seeds := append(realDeltas(f),
		craft(headerOf(f, header(1, 512, 3, 2)), deflate(f, pages(512, 1, 3))),
		craft(headerOf(f, header(1, 512, 1, 0)), deflate(f, pages(512))))
	for _, enc := range seeds {
		if _, err := pagelog.Decode(enc); err != nil {
			f.Fatalf("a seed does not decode, and the fuzzer would explore refusals only: %v", err)
		}
		headerEnd := 12 + binary.BigEndian.Uint32(enc[8:])
		stream := enc[headerEnd : len(enc)-sha256.Size]
		inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(stream)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc[12:headerEnd], stream, true)
		f.Add(enc[12:headerEnd], inflated, false)
	}
	var zw *flate.Writer // one compressor: a new one allocates a megabyte
	f.Fuzz(func(t *testing.T, header, data []byte, deflated bool) {
		stream := data
		if !deflated {
			var buf bytes.Buffer
			if zw == nil {
				zw, _ = flate.NewWriter(&buf, flate.BestSpeed)
			}
			zw.Reset(&buf)
			zw.Write(data)
			zw.Close()
			stream = buf.Bytes()
		}
		b := craft(header, stream)
		var d pagelog.Delta
		var err error
		if n := allocated(func() { d, err = pagelog.Decode(b) }); n > 1<<20+2*1032*uint64(len(b)) {
			t.Fatalf("%d bytes allocated to decode %d bytes", n, len(b))
		}
		if err != nil {
			if !errors.Is(err, pagelog.ErrCorrupt) {
				t.Fatalf("a refusal that is not ErrCorrupt: %v", err)
			}
			return
		}
		checkDecoded(t, b, d)
	})
}

func checkDecoded(t *testing.T, b []byte, d pagelog.Delta) {
	size := int64(d.Count) * (4 + int64(d.PageSize))
	if d.Count != len(d.Changed) || uint64(d.Count) > uint64(d.Pages) || size > pagelog.MaxDeltaBytes || d.Size != len(b) {
		t.Fatalf("decoded %d of %d pages in a %d-page database, %d bytes of pages, size %d of %d", len(d.Changed), d.Count, d.Pages, size, d.Size, len(b))
	}
	for i, p := range d.Changed {
		if p.No == 0 || p.No > d.Pages || (i > 0 && p.No <= d.Changed[i-1].No) || len(p.Data) != int(d.PageSize) {
			t.Fatalf("page %d (%d bytes) at %d", p.No, len(p.Data), i)
		}
	}
	// The stream, inflated apart, is the pages as Encode lays them out
	// and ends exactly at the trailer.
	headerEnd := 12 + binary.BigEndian.Uint32(b[8:])
	stream := bytes.NewReader(b[headerEnd : len(b)-sha256.Size])
	inflated, err := io.ReadAll(flate.NewReader(stream))
	if err != nil || stream.Len() != 0 {
		t.Fatalf("decoded, yet the stream inflates with %v and leaves %d bytes", err, stream.Len())
	}
	var laid []byte
	for _, p := range d.Changed {
		laid = append(binary.BigEndian.AppendUint32(laid, p.No), p.Data...)
	}
	if !bytes.Equal(inflated, laid) {
		t.Fatalf("decoded %d bytes of pages from a stream of %d", len(laid), len(inflated))
	}
	if d.Count > 0 {
		if _, err := pagelog.DecodeLimited(b, size-1); err == nil {
			t.Fatalf("decoded %d bytes of pages under a limit of %d", size, size-1)
		}
	}
	if int64(len(b)) <= pagelog.MaxEncodedSize(size) {
		if _, err := pagelog.DecodeLimited(b, size); err != nil {
			t.Fatalf("refused under a limit of its own size: %v", err)
		}
	}
	re, err := pagelog.Encode(d)
	if err != nil {
		t.Fatalf("a decoded delta does not encode: %v", err)
	}
	if !bytes.Equal(re[:headerEnd], b[:headerEnd]) {
		t.Fatalf("re-encoded header %q, read %q", re[12:headerEnd], b[12:headerEnd])
	}
	again, err := pagelog.Decode(re)
	if err != nil {
		t.Fatalf("a re-encoded delta does not decode: %v", err)
	}
	if len(again.Changed) != len(d.Changed) {
		t.Fatalf("re-encoded: %d pages, was %d", len(again.Changed), len(d.Changed))
	}
	for i := range d.Changed {
		if again.Changed[i].No != d.Changed[i].No || !bytes.Equal(again.Changed[i].Data, d.Changed[i].Data) {
			t.Fatalf("re-encoded: page %d differs", d.Changed[i].No)
		}
	}
}
