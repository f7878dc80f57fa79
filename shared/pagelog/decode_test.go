package pagelog_test

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// flat is what a refused decode may allocate: the decompressor, the
// header and a page or two, never what the delta claims.
const flat = 1 << 20

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// craft builds an encoded delta from a header and a compressed stream as
// an attacker would: the SHA-256 trailer is no secret.
func craft(header, stream []byte) []byte {
	b := []byte("CAIODLT1")
	b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	b = append(b, stream...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// headerOf is the header Encode writes for d.
func headerOf(t testing.TB, d pagelog.Delta) []byte {
	t.Helper()
	h, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// deflate compresses what write writes.
func deflate(t testing.TB, write func(w *flate.Writer)) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	write(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeros writes n zero bytes: a stream that inflates a thousandfold.
func zeros(n int) func(*flate.Writer) {
	return func(w *flate.Writer) {
		chunk := make([]byte, 1<<16)
		for ; n > 0; n -= len(chunk) {
			w.Write(chunk[:min(n, len(chunk))])
		}
	}
}

// pages writes the numbered pages (zeros) as Encode lays them out.
func pages(pageSize int, nos ...uint32) func(*flate.Writer) {
	return func(w *flate.Writer) {
		data := make([]byte, pageSize)
		for _, no := range nos {
			w.Write(binary.BigEndian.AppendUint32(nil, no))
			w.Write(data)
		}
	}
}

func header(seq uint64, pageSize, size uint32, count int) pagelog.Delta {
	return pagelog.Delta{Seq: seq, PageSize: pageSize, Pages: size, Pre: 1, Post: 2, OpID: "op", Time: time.Unix(1700000000, 0).UTC(), Count: count}
}

// A delta that declares more than a reader takes is refused before its
// pages are inflated: memory stays flat whatever the header claims and
// whatever the stream would inflate to.
func TestOversizeDeltasAreRefusedWithFlatMemory(t *testing.T) {
	bomb := deflate(t, zeros(64<<20)) // 64 MiB of zeros in about 64 KiB
	t.Logf("a 64 MiB stream of zeros deflates to %d bytes", len(bomb))

	huge := craft(headerOf(t, header(1, 65536, 1<<24, 1<<24)), bomb) // declares 1 TiB
	var err error
	if n := allocated(func() { _, err = pagelog.Decode(huge) }); n > flat {
		t.Errorf("a delta declaring 1 TiB allocated %d bytes", n)
	}
	if !errors.Is(err, pagelog.ErrCorrupt) || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a delta declaring 1 TiB: %v", err)
	}

	// Within the cap, the stream is read only as far as it holds pages:
	// a header claiming 1 GiB (two million small pages) with two pages
	// behind it costs two pages.
	count := pagelog.MaxDeltaBytes / (4 + 512)
	short := craft(headerOf(t, header(1, 512, uint32(count), count)), deflate(t, pages(512, 1, 2)))
	if n := allocated(func() { _, err = pagelog.Decode(short) }); n > flat {
		t.Errorf("a delta declaring %d pages and holding 2 allocated %d bytes", count, n)
	}
	if !errors.Is(err, pagelog.ErrCorrupt) || !strings.Contains(err.Error(), "end after 2 of") {
		t.Errorf("a delta holding fewer pages than declared: %v", err)
	}

	// A stream that goes on past the declared pages is not inflated further.
	long := craft(headerOf(t, header(1, 4096, 1<<20, 1)), deflate(t, func(w *flate.Writer) {
		pages(4096, 1)(w)
		zeros(64 << 20)(w)
	}))
	if n := allocated(func() { _, err = pagelog.Decode(long) }); n > flat {
		t.Errorf("a stream going on past its page allocated %d bytes", n)
	}
	if !errors.Is(err, pagelog.ErrCorrupt) || !strings.Contains(err.Error(), "go on past") {
		t.Errorf("a stream going on past its page: %v", err)
	}

	// The caller's limit: a genuine 16 MiB delta is refused by a reader
	// taking 1 MiB, before anything is inflated.
	zero := make([]byte, 4096)
	d := header(1, 4096, 4096, 0)
	for no := uint32(1); no <= 4096; no++ {
		d.Changed = append(d.Changed, pagelog.Page{No: no, Data: zero})
	}
	genuine, err := pagelog.Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	if n := allocated(func() { _, err = pagelog.DecodeLimited(genuine, 1<<20) }); n > flat {
		t.Errorf("a 16 MiB delta under a 1 MiB limit allocated %d bytes", n)
	}
	if !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("a 16 MiB delta under a 1 MiB limit: %v", err)
	}
	exact := int64(4096 * (4 + 4096))
	if _, err := pagelog.DecodeLimited(genuine, exact); err != nil {
		t.Errorf("the same delta under a limit of its size: %v", err)
	}
	if _, err := pagelog.DecodeLimited(genuine, exact-1); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("the same delta under a limit one byte short: %v", err)
	}
}

// Every malformed delta is refused as corrupt, saying what is wrong.
func TestMalformedDeltasAreRefused(t *testing.T) {
	good := header(3, 4096, 10, 2)
	stream := deflate(t, pages(4096, 2, 7))
	if _, err := pagelog.Decode(craft(headerOf(t, good), stream)); err != nil {
		t.Fatalf("the well-formed delta the cases start from: %v", err)
	}
	with := func(f func(*pagelog.Delta)) []byte {
		d := good
		f(&d)
		return headerOf(t, d)
	}
	canon := string(headerOf(t, good))
	for _, c := range []struct {
		name, want     string
		header, stream []byte
	}{
		{"page size not a power of two", "page size 3000", with(func(d *pagelog.Delta) { d.PageSize = 3000 }), stream},
		{"page size under 512", "page size 256", with(func(d *pagelog.Delta) { d.PageSize = 256 }), stream},
		{"page size over 65536", "page size 131072", with(func(d *pagelog.Delta) { d.PageSize = 131072 }), stream},
		{"a database of no pages", "0 pages", with(func(d *pagelog.Delta) { d.Pages, d.Count = 0, 0 }), deflate(t, pages(4096))},
		{"more changed pages than the database has", "3 changed pages in a database of 2", with(func(d *pagelog.Delta) { d.Pages, d.Count = 2, 3 }), stream},
		{"a negative count", "-1 changed pages", with(func(d *pagelog.Delta) { d.Count = -1 }), stream},
		{"page 0", "page 0 is outside", headerOf(t, good), deflate(t, pages(4096, 0, 7))},
		{"a page past the end", "page 11 is outside", headerOf(t, good), deflate(t, pages(4096, 2, 11))},
		{"pages out of order", "page 2 comes after page 7", headerOf(t, good), deflate(t, pages(4096, 7, 2))},
		{"a page twice", "page 2 comes after page 2", headerOf(t, good), deflate(t, pages(4096, 2, 2))},
		{"a page cut short", "end within page 7", headerOf(t, good), deflate(t, func(w *flate.Writer) { pages(4096, 2)(w); w.Write([]byte{0, 0, 0, 7, 1, 2, 3}) })},
		{"one page too many", "go on past the 2 declared", headerOf(t, good), deflate(t, pages(4096, 2, 7, 9))},
		{"bytes after the stream", "1 bytes after the compressed pages", headerOf(t, good), append(bytes.Clone(stream), 0)},
		{"not deflate", "end after 0 of 2", headerOf(t, good), []byte{0xff, 0xff, 0xff}},
		{"spaces in the header", "not as Encode writes it", []byte(strings.Replace(canon, ",", ", ", 1)), stream},
		{"a key in another case", "not as Encode writes it", []byte(strings.Replace(canon, `"seq"`, `"Seq"`, 1)), stream},
		{"an unknown key", "not as Encode writes it", []byte(strings.Replace(canon, `{`, `{"x":1,`, 1)), stream},
		{"a key twice", "not as Encode writes it", []byte(strings.Replace(canon, `{`, `{"pages":99,`, 1)), stream},
		{"no time", "not as Encode writes it", []byte(canon[:strings.Index(canon, `,"time"`)] + `,"count":2}`), stream},
		{"not JSON", "header:", []byte("{"), stream},
	} {
		_, err := pagelog.Decode(craft(c.header, c.stream))
		if !errors.Is(err, pagelog.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	enc := craft(headerOf(t, good), stream)
	if _, err := pagelog.Decode(append(bytes.Clone(enc[:8]), enc...)); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("a doubled magic: %v", err)
	}
	if _, err := pagelog.Decode([]byte("CAIODLT2" + string(enc[8:]))); !errors.Is(err, pagelog.ErrCorrupt) {
		t.Errorf("another magic: %v", err)
	}
	noise := make([]byte, 8192)
	rand.Read(noise)
	big := craft(headerOf(t, good), deflate(t, func(w *flate.Writer) { w.Write(noise) }))
	if _, err := pagelog.DecodeLimited(big, 100); !errors.Is(err, pagelog.ErrCorrupt) || !strings.Contains(err.Error(), "more than a delta") {
		t.Errorf("more bytes than the limit allows: %v", err)
	}
}

// Encode refuses what Decode would: no delta in a log is unreadable.
func TestEncodeRefusesWhatDecodeWould(t *testing.T) {
	page := make([]byte, 65536)
	big := header(1, 65536, 1<<20, 0)
	for no := range uint32(pagelog.MaxDeltaBytes/(4+65536) + 1) {
		big.Changed = append(big.Changed, pagelog.Page{No: no + 1, Data: page}) // one buffer: nothing is compressed
	}
	for _, c := range []struct {
		name, want string
		d          pagelog.Delta
	}{
		{"over MaxDeltaBytes", "over the limit", big},
		{"a page of the wrong size", "has 4096 bytes, not 512", pagelog.Delta{PageSize: 512, Pages: 1, Changed: []pagelog.Page{{No: 1, Data: page[:4096]}}}},
		{"a page twice", "page 1 comes after page 1", pagelog.Delta{PageSize: 512, Pages: 2, Changed: []pagelog.Page{{No: 1, Data: page[:512]}, {No: 1, Data: page[:512]}}}},
		{"a page past the end", "page 3 is outside", pagelog.Delta{PageSize: 512, Pages: 2, Changed: []pagelog.Page{{No: 3, Data: page[:512]}}}},
		{"a header over 4096 bytes", "a header of", pagelog.Delta{PageSize: 512, Pages: 1, OpID: strings.Repeat("x", 5000)}},
	} {
		if _, err := pagelog.Encode(c.d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// MaxEncodedSize holds for pages that do not compress at all.
func TestMaxEncodedSizeHoldsForIncompressiblePages(t *testing.T) {
	for _, ps := range []uint32{512, 4096, 65536} {
		d := header(1, ps, 64, 0)
		for no := uint32(1); no <= 64; no++ {
			data := make([]byte, ps)
			rand.Read(data)
			d.Changed = append(d.Changed, pagelog.Page{No: no, Data: data})
		}
		enc, err := pagelog.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		limit := int64(64 * (4 + ps))
		if max := pagelog.MaxEncodedSize(limit); int64(len(enc)) > max {
			t.Errorf("%d-byte pages: %d bytes encoded, MaxEncodedSize %d", ps, len(enc), max)
		}
		if _, err := pagelog.DecodeLimited(enc, limit); err != nil {
			t.Errorf("%d-byte pages under their own size: %v", ps, err)
		}
	}
}
