// Package pagelog ships an SQLite database as a log of page deltas: the
// pages one transaction changed, read from the WAL, with what is needed to
// check that a delta applies to the state a reader holds and leaves it in
// the state its writer had.
//
// A state's checksum is the XOR over its pages of CRC-64 (page number and
// content), as in LiteFS: a delta moves it in time proportional to the
// pages it changes, not to the database.
package pagelog

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Page is one database page.
type Page struct {
	No   uint32
	Data []byte
}

// Delta is one committed transaction's pages.
type Delta struct {
	Seq uint64 `json:"seq"`
	// First is set on a merged delta (Merge) only: the first of the
	// deltas it merges, Seq the last. Absent from a plain delta's header,
	// whose encoding is then what it always was.
	First    uint64    `json:"first,omitempty"`
	PageSize uint32    `json:"page_size"`
	Pages    uint32    `json:"pages"` // database size in pages after the commit
	Pre      uint64    `json:"pre"`   // checksum of the state it applies to
	Post     uint64    `json:"post"`  // checksum of the state it leaves
	OpID     string    `json:"op"`
	Time     time.Time `json:"time"`
	Count    int       `json:"count"`
	Changed  []Page    `json:"-"`
	Size     int       `json:"-"` // encoded, as read by Decode
}

// crcTable is built at first use: the tables cost every process start
// (32 KB), and a function on a local database never checksums a page.
var crcTable = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64.ISO) })

// PageSum is one page's part of a state checksum.
func PageSum(no uint32, data []byte) uint64 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], no)
	return crc64.Update(crc64.Update(0, crcTable(), b[:]), crcTable(), data)
}

// ErrCorrupt marks a delta, snapshot or file that fails its checks.
var ErrCorrupt = errors.New("corrupt")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// PageSizeOf reads the page size from an SQLite header.
func PageSizeOf(header []byte) (uint32, error) {
	if len(header) < 100 || string(header[:16]) != "SQLite format 3\x00" {
		return 0, corrupt("not an SQLite database")
	}
	ps := uint32(binary.BigEndian.Uint16(header[16:18]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps&(ps-1) != 0 {
		return 0, corrupt("page size %d", ps)
	}
	return ps, nil
}

// SchemaCookie reads the schema cookie (header offset 40): it changes
// whenever the schema does.
func SchemaCookie(path string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 40); err != nil {
		return 0, corrupt("short file")
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// Normalize marks a database file as WAL mode in its header (bytes 18 and
// 19), as opening it in WAL mode would: every copy of a state then has the
// same bytes whichever journal mode it was written in.
func Normalize(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [2]byte
	if _, err := f.ReadAt(b[:], 18); err != nil {
		return corrupt("short file")
	}
	if b == [2]byte{2, 2} {
		return nil
	}
	if _, err := f.WriteAt([]byte{2, 2}, 18); err != nil {
		return err
	}
	return nil
}

// Checksum is the state checksum of a whole database file.
func Checksum(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	header := make([]byte, 100)
	if _, err := io.ReadFull(f, header); err != nil {
		return 0, corrupt("not an SQLite database")
	}
	ps, err := PageSizeOf(header)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	var sum uint64
	buf := make([]byte, ps)
	for no := uint32(1); ; no++ {
		_, err := io.ReadFull(f, buf)
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return 0, corrupt("the file is not a whole number of pages")
		}
		sum ^= PageSum(no, buf)
	}
}

// Post computes the checksum a file with checksum pre will have once
// pages are written and it is cut (or grown) to size pages. It checks that
// the change is whole: every page past the current end is supplied.
func Post(f *os.File, pageSize uint32, pre uint64, pages []Page, size uint32) (uint64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if info.Size()%int64(pageSize) != 0 {
		return 0, corrupt("the database is not a whole number of %d-byte pages", pageSize)
	}
	old := uint32(info.Size() / int64(pageSize))
	post := pre
	seen := make(map[uint32]bool, len(pages))
	buf := make([]byte, pageSize)
	for _, p := range pages {
		if p.No == 0 || p.No > size || len(p.Data) != int(pageSize) || seen[p.No] {
			return 0, corrupt("page %d does not belong in a %d-page database", p.No, size)
		}
		seen[p.No] = true
		if p.No <= old {
			if _, err := f.ReadAt(buf, int64(p.No-1)*int64(pageSize)); err != nil {
				return 0, err
			}
			post ^= PageSum(p.No, buf)
		}
		post ^= PageSum(p.No, p.Data)
	}
	for no := old + 1; no <= size; no++ {
		if !seen[no] {
			return 0, corrupt("page %d is missing: the database grows to %d pages", no, size)
		}
	}
	for no := size + 1; no <= old; no++ { // pages cut off
		if _, err := f.ReadAt(buf, int64(no-1)*int64(pageSize)); err != nil {
			return 0, err
		}
		post ^= PageSum(no, buf)
	}
	return post, nil
}

// Apply writes d to the database file at path, whose state has checksum
// cur and sequence number d.Seq-1. Every check runs before the first
// write: a delta that does not apply changes nothing.
func Apply(path string, cur uint64, d Delta) error {
	if d.Pre != cur {
		return corrupt("delta %d applies to another state than the one held (checksum %016x, held %016x)", d.Seq, d.Pre, cur)
	}
	return write(path, cur, d)
}

// ApplyOver writes the merged delta d (Merge) to the database file at
// path, whose state has checksum cur and lies anywhere from d.First-1 to
// d.Seq: d holds, for every page changed in that span, its content at
// d.Seq, so a page it also held at the earlier state is written again
// with the same content, and the file ends in state d.Seq. What checks
// that is the result: the state the pages lead to must be d.Post, checked
// before the first write, as Apply does; d.Pre is not the state held, so
// it cannot be checked here, and the caller's chain of checks (the next
// delta's Pre) covers the rest.
func ApplyOver(path string, cur uint64, d Delta) error {
	if d.First == 0 {
		return corrupt("delta %d is not a merged delta", d.Seq)
	}
	return write(path, cur, d)
}

// write checks that d's pages lead the file from cur to d.Post and writes
// them.
func write(path string, cur uint64, d Delta) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	header := make([]byte, 100)
	if _, err := f.ReadAt(header, 0); err != nil {
		return corrupt("the database file is damaged")
	}
	ps, err := PageSizeOf(header)
	if err != nil {
		return err
	}
	if ps != d.PageSize {
		return corrupt("delta %d has %d-byte pages, the database %d", d.Seq, d.PageSize, ps)
	}
	post, err := Post(f, ps, cur, d.Changed, d.Pages)
	if err != nil {
		return fmt.Errorf("delta %d: %w", d.Seq, err)
	}
	if post != d.Post {
		return corrupt("delta %d does not lead to the state its writer recorded", d.Seq)
	}
	for _, p := range d.Changed {
		if _, err := f.WriteAt(p.Data, int64(p.No-1)*int64(ps)); err != nil {
			return err
		}
	}
	return f.Truncate(int64(d.Pages) * int64(ps))
}

const magic = "CAIODLT1"

// writers reuses compressors: a new one costs more than a small delta.
var writers = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// maxHeader bounds a delta's JSON header.
const maxHeader = 4096

// MaxDeltaBytes bounds a delta's pages as inflated: each page is its
// number (4 bytes) and its data, so a delta may hold Count × (4 + PageSize)
// bytes. Decode refuses a delta that declares more before it allocates
// anything for its pages, and Encode refuses to write one, so that no
// delta in a log is unreadable. 1 GiB: no function that reads the log has
// more memory than that, so a larger delta (a restore is one delta holding
// every page of the database) could not be read anyway.
const MaxDeltaBytes = 1 << 30

// MaxEncodedSize is the most bytes an encoded delta whose pages inflate
// to at most limit bytes takes: magic, header length, header, the
// deflated pages, SHA-256. Deflate stores what it cannot compress with 5
// bytes per block of up to 65535 (RFC 1951, 3.2.4), far within limit/1024;
// 1024 more bytes cover the final block. A reader can read at most this
// many bytes of an object before decoding it.
func MaxEncodedSize(limit int64) int64 {
	limit = max(0, min(limit, MaxDeltaBytes))
	return int64(len(magic)+4+maxHeader+sha256.Size) + limit + limit/1024 + 1024
}

// pageBytes is the size of count pages and their numbers as inflated.
func pageBytes(count int, pageSize uint32) int64 {
	return int64(count) * (4 + int64(pageSize))
}

// checkHeader says what is wrong with d's declared sizes for a reader
// that takes at most limit bytes of pages. It looks at no page: it runs
// before anything is allocated for them.
func (d *Delta) checkHeader(limit int64) error {
	limit = min(limit, MaxDeltaBytes)
	switch {
	case d.PageSize < 512 || d.PageSize > 65536 || d.PageSize&(d.PageSize-1) != 0:
		return fmt.Errorf("page size %d is not a power of two from 512 to 65536", d.PageSize)
	case d.Pages == 0:
		return errors.New("a database of 0 pages: it has at least its header page")
	case d.Count < 0 || uint64(d.Count) > uint64(d.Pages):
		return fmt.Errorf("%d changed pages in a database of %d", d.Count, d.Pages)
	case pageBytes(d.Count, d.PageSize) > limit:
		return fmt.Errorf("%d pages of %d bytes inflate to %d bytes, over the limit of %d", d.Count, d.PageSize, pageBytes(d.Count, d.PageSize), limit)
	}
	return nil
}

// checkPage says what is wrong with p as the page after prev (0 for the
// first): pages are in increasing order, within the database.
func (d *Delta) checkPage(p Page, prev uint32) error {
	switch {
	case p.No == 0 || p.No > d.Pages:
		return fmt.Errorf("page %d is outside a database of %d pages", p.No, d.Pages)
	case p.No <= prev:
		return fmt.Errorf("page %d comes after page %d: pages are in increasing order, each once", p.No, prev)
	case len(p.Data) != int(d.PageSize):
		return fmt.Errorf("page %d has %d bytes, not %d", p.No, len(p.Data), d.PageSize)
	}
	return nil
}

// Encode serialises d: magic, header length and JSON header, the pages
// deflated, and a SHA-256 of all that. It refuses a delta that Decode
// would refuse.
func Encode(d Delta) ([]byte, error) {
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].No < d.Changed[j].No })
	d.Count = len(d.Changed)
	if err := d.checkHeader(MaxDeltaBytes); err != nil {
		return nil, fmt.Errorf("delta %d cannot be encoded: %w", d.Seq, err)
	}
	var prev uint32
	for _, p := range d.Changed {
		if err := d.checkPage(p, prev); err != nil {
			return nil, fmt.Errorf("delta %d cannot be encoded: %w", d.Seq, err)
		}
		prev = p.No
	}
	header, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if len(header) > maxHeader {
		return nil, fmt.Errorf("delta %d cannot be encoded: a header of %d bytes, over %d", d.Seq, len(header), maxHeader)
	}
	var buf bytes.Buffer
	buf.WriteString(magic)
	binary.Write(&buf, binary.BigEndian, uint32(len(header)))
	buf.Write(header)
	zw := writers.Get().(*flate.Writer)
	defer writers.Put(zw)
	zw.Reset(&buf)
	var no [4]byte
	for _, p := range d.Changed {
		binary.BigEndian.PutUint32(no[:], p.No)
		zw.Write(no[:])
		zw.Write(p.Data)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), nil
}

// Decode parses and checks an encoded delta of at most MaxDeltaBytes of
// pages.
func Decode(b []byte) (Delta, error) {
	return DecodeLimited(b, MaxDeltaBytes)
}

// DecodeLimited parses and checks an encoded delta whose pages inflate to
// at most limit bytes (and never more than MaxDeltaBytes). The declared
// sizes are checked before anything is allocated for the pages, and the
// pages are inflated one by one, as declared, never past it: what a
// decode allocates is bounded by limit and by the pages the delta does
// hold, not by what its header claims.
func DecodeLimited(b []byte, limit int64) (Delta, error) {
	return DecodeChecked(b, limit, nil)
}

// DecodeChecked is DecodeLimited with a check of the header (the delta's
// number, base checksum, page size) before any page is inflated: a reader
// refuses a delta that is not for the state it holds at the cost of its
// header alone, however many pages it declares.
func DecodeChecked(b []byte, limit int64, check func(header Delta) error) (Delta, error) {
	if len(b) < len(magic)+4+sha256.Size || string(b[:len(magic)]) != magic {
		return Delta{}, corrupt("not a delta")
	}
	if int64(len(b)) > MaxEncodedSize(limit) {
		return Delta{}, corrupt("%d bytes, more than a delta of at most %d bytes of pages takes", len(b), min(limit, MaxDeltaBytes))
	}
	body, trailer := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], trailer) {
		return Delta{}, corrupt("checksum mismatch")
	}
	n := binary.BigEndian.Uint32(body[len(magic):])
	rest := body[len(magic)+4:]
	if n > maxHeader || int(n) > len(rest) {
		return Delta{}, corrupt("header length %d", n)
	}
	header, stream := rest[:n], bytes.NewReader(rest[n:])
	var d Delta
	if err := json.Unmarshal(header, &d); err != nil {
		return Delta{}, corrupt("header: %v", err)
	}
	// One header per delta: Go's JSON decoder would also take other
	// spellings (keys in another case or order, unknown keys, spaces).
	if canon, err := json.Marshal(d); err != nil || !bytes.Equal(canon, header) {
		return Delta{}, corrupt("the header is not as Encode writes it")
	}
	if err := d.checkHeader(limit); err != nil {
		return Delta{}, fmt.Errorf("%w: delta %d: %w", ErrCorrupt, d.Seq, err)
	}
	if check != nil {
		if err := check(d); err != nil {
			return Delta{}, err
		}
	}
	zr := flate.NewReader(stream)
	// Room for the pages as they arrive, not for what the header claims.
	d.Changed = make([]Page, 0, min(d.Count, 1024))
	var no [4]byte
	var prev uint32
	for i := range d.Count {
		if _, err := io.ReadFull(zr, no[:]); err != nil {
			return Delta{}, corrupt("delta %d: the pages end after %d of %d: %v", d.Seq, i, d.Count, err)
		}
		p := Page{No: binary.BigEndian.Uint32(no[:]), Data: make([]byte, d.PageSize)}
		if err := d.checkPage(p, prev); err != nil {
			return Delta{}, fmt.Errorf("%w: delta %d: %w", ErrCorrupt, d.Seq, err)
		}
		if _, err := io.ReadFull(zr, p.Data); err != nil {
			return Delta{}, corrupt("delta %d: the pages end within page %d (%d of %d): %v", d.Seq, p.No, i+1, d.Count, err)
		}
		d.Changed = append(d.Changed, p)
		prev = p.No
	}
	// Nothing after the last page, in the stream or after it.
	switch _, err := io.ReadFull(zr, no[:1]); {
	case err == nil:
		return Delta{}, corrupt("delta %d: the compressed pages go on past the %d declared", d.Seq, d.Count)
	case err != io.EOF:
		return Delta{}, corrupt("delta %d: the compressed pages do not end cleanly: %v", d.Seq, err)
	}
	if stream.Len() != 0 {
		return Delta{}, corrupt("delta %d: %d bytes after the compressed pages", d.Seq, stream.Len())
	}
	d.Size = len(b)
	return d, nil
}
