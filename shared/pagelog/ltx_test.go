package pagelog_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/superfly/ltx"

	"github.com/caio-licensing/caio-licensing/shared/pagelog"
)

// The CRC is CRC-64/GO-ISO over the page number, big-endian, then the
// page: page number 0x31323334 ("1234") with "56789" is the catalogue's
// check input "123456789".
func TestPageSumIsCRC64GOISO(t *testing.T) {
	if got := pagelog.PageSum(0x31323334, []byte("56789")); got != 0xb90956c775a41001 {
		t.Fatalf("PageSum of \"123456789\" is %016x, CRC-64/GO-ISO's check value is b90956c775a41001", got)
	}
}

// PageSum is LTX's page checksum without its flag bit, and a state
// checksum is LTX's database checksum without it (LTX sets the top bit so
// that its checksums are never zero): ltx = ours | ltx.ChecksumFlag, for
// every page and for a database below LTX's lock page.
func TestStateChecksumIsLTXs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	db := openWAL(t, path)
	exec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
	exec(t, db, "INSERT INTO t (v) SELECT randomblob(1000) FROM generate_series(1, 200)")
	checkpoint(t, db)
	db.Close()

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096
	if len(raw)%ps != 0 || len(raw)/ps < 50 {
		t.Fatalf("a sample of %d bytes, not 50 or more whole pages", len(raw))
	}
	flag := uint64(ltx.ChecksumFlag)
	var top [2]int // pages whose PageSum has bit 63 clear, set
	for i := 0; i < len(raw)/ps; i++ {
		no, data := uint32(i+1), raw[i*ps:(i+1)*ps]
		ours := pagelog.PageSum(no, data)
		if theirs := uint64(ltx.ChecksumPage(no, data)); theirs != ours|flag {
			t.Fatalf("page %d: ltx %016x, ours %016x", no, theirs, ours)
		}
		top[ours>>63]++
	}
	if top[0] == 0 || top[1] == 0 {
		t.Fatalf("no sample page has bit 63 %s: the flag is not shown to be all that differs", map[bool]string{true: "clear", false: "set"}[top[0] == 0])
	}

	ours, err := pagelog.Checksum(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	theirs, err := ltx.ChecksumReader(f, ps)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(theirs) != ours|flag {
		t.Fatalf("database: ltx %016x, ours %016x", uint64(theirs), ours)
	}
}

// From LTX's lock page on (the page holding SQLite's pending byte, at
// 1 GiB), LTX leaves that page out of a database checksum and we do not:
// ltx = (ours ^ PageSum(lock page)) | ltx.ChecksumFlag. Shown on a sparse
// file of 64 KiB pages just past 1 GiB (LTX reads the same bytes from
// memory); it is a CRC of 2 GiB, about 2 s of CPU.
func TestStateChecksumPastLTXsLockPage(t *testing.T) {
	if testing.Short() {
		t.Skip("checksums 1 GiB twice")
	}
	const ps = 65536
	lock := ltx.LockPgno(ps)
	size := int64(lock+1) * ps
	page1 := make([]byte, ps)
	copy(page1, "SQLite format 3\x00\x00\x01") // page size 1 means 65536
	path := filepath.Join(t.TempDir(), "big.db")
	if err := os.WriteFile(path, page1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	ours, err := pagelog.Checksum(path)
	if err != nil {
		t.Fatal(err)
	}
	file := io.MultiReader(bytes.NewReader(page1), io.LimitReader(zeroReader{}, size-ps))
	theirs, err := ltx.ChecksumReader(file, ps)
	if err != nil {
		t.Fatal(err)
	}
	want := (ours ^ pagelog.PageSum(lock, make([]byte, ps))) | uint64(ltx.ChecksumFlag)
	if uint64(theirs) != want {
		t.Fatalf("past the lock page %d: ltx %016x, ours %016x, want ltx %016x", lock, uint64(theirs), ours, want)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
