package pagelog

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
)

// The WAL format (https://sqlite.org/fileformat2.html#walformat): a 32-byte
// header, then frames of a 24-byte header and one page. A frame belongs to
// the log while its salts match the header's and the running checksum
// holds; a frame with a non-zero "database size" ends a transaction.

const (
	walHeaderSize = 32
	frameHeader   = 24
)

// ReadWAL returns the pages of the committed transactions in the WAL at
// path (the last version of each page), the database size in pages after
// the last commit, and the page size. An empty or missing WAL has no pages.
func ReadWAL(path string) (pageSize uint32, pages []Page, size uint32, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(raw) < walHeaderSize) {
		return 0, nil, 0, nil
	}
	if err != nil {
		return 0, nil, 0, err
	}
	magic := binary.BigEndian.Uint32(raw[0:])
	if magic&^1 != 0x377f0682 {
		return 0, nil, 0, corrupt("not a WAL file")
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic&1 == 1 {
		order = binary.BigEndian
	}
	pageSize = binary.BigEndian.Uint32(raw[8:])
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return 0, nil, 0, corrupt("WAL page size %d", pageSize)
	}
	salt1, salt2 := binary.BigEndian.Uint32(raw[16:]), binary.BigEndian.Uint32(raw[20:])
	s1, s2 := walChecksum(order, raw[:24], 0, 0)
	if s1 != binary.BigEndian.Uint32(raw[24:]) || s2 != binary.BigEndian.Uint32(raw[28:]) {
		return 0, nil, 0, corrupt("WAL header checksum")
	}
	latest := map[uint32][]byte{}
	pending := map[uint32][]byte{}
	for off := walHeaderSize; off+frameHeader+int(pageSize) <= len(raw); off += frameHeader + int(pageSize) {
		fh := raw[off : off+frameHeader]
		if binary.BigEndian.Uint32(fh[8:]) != salt1 || binary.BigEndian.Uint32(fh[12:]) != salt2 {
			break
		}
		data := raw[off+frameHeader : off+frameHeader+int(pageSize)]
		s1, s2 = walChecksum(order, fh[:8], s1, s2)
		s1, s2 = walChecksum(order, data, s1, s2)
		if s1 != binary.BigEndian.Uint32(fh[16:]) || s2 != binary.BigEndian.Uint32(fh[20:]) {
			break
		}
		pending[binary.BigEndian.Uint32(fh[0:])] = data
		if commit := binary.BigEndian.Uint32(fh[4:]); commit != 0 {
			for no, d := range pending {
				latest[no] = d
			}
			clear(pending)
			size = commit
		}
	}
	for no, d := range latest {
		if no <= size {
			pages = append(pages, Page{No: no, Data: d})
		}
	}
	return pageSize, pages, size, nil
}

// walChecksum continues SQLite's WAL checksum over b (a multiple of 8 bytes).
func walChecksum(order binary.ByteOrder, b []byte, s1, s2 uint32) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s1 += order.Uint32(b[i:]) + s2
		s2 += order.Uint32(b[i+4:]) + s1
	}
	return s1, s2
}
