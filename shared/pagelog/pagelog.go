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
	Seq      uint64    `json:"seq"`
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

var crcTable = crc64.MakeTable(crc64.ISO)

// PageSum is one page's part of a state checksum.
func PageSum(no uint32, data []byte) uint64 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], no)
	return crc64.Update(crc64.Update(0, crcTable, b[:]), crcTable, data)
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

// Encode serialises d: magic, header length and JSON header, the pages
// deflated, and a SHA-256 of all that.
func Encode(d Delta) ([]byte, error) {
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].No < d.Changed[j].No })
	d.Count = len(d.Changed)
	header, err := json.Marshal(d)
	if err != nil {
		return nil, err
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

// Decode parses and checks an encoded delta.
func Decode(b []byte) (Delta, error) {
	var d Delta
	if len(b) < len(magic)+4+sha256.Size || string(b[:len(magic)]) != magic {
		return d, corrupt("not a delta")
	}
	body, trailer := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], trailer) {
		return d, corrupt("checksum mismatch")
	}
	n := binary.BigEndian.Uint32(body[len(magic):])
	rest := body[len(magic)+4:]
	if n > maxHeader || int(n) > len(rest) {
		return d, corrupt("header length %d", n)
	}
	if err := json.Unmarshal(rest[:n], &d); err != nil {
		return d, corrupt("header: %v", err)
	}
	if d.PageSize < 512 || d.PageSize > 65536 || d.PageSize&(d.PageSize-1) != 0 || d.Count < 0 || uint64(d.Count) > uint64(d.Pages) {
		return d, corrupt("header fields out of range")
	}
	want := int64(d.Count) * int64(4+d.PageSize)
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(rest[n:])), want+1))
	if err != nil || int64(len(raw)) != want {
		return d, corrupt("pages do not match the header")
	}
	d.Changed = make([]Page, d.Count)
	for i := range d.Changed {
		off := i * int(4+d.PageSize)
		d.Changed[i] = Page{No: binary.BigEndian.Uint32(raw[off:]), Data: raw[off+4 : off+4+int(d.PageSize)]}
	}
	d.Size = len(b)
	return d, nil
}
