package main_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// maintain moves the history to archives; list-events, export-events and
// show-license read across the boundary, as if nothing had moved.
func maintainAcrossTheBoundary(t *testing.T, c *cli, archiveDir string) {
	key := c.ok("generate-license", "CUST-001", "standard", "--max-instances", "5").lastLine()
	for _, id := range []string{"a", "b", "c"} {
		c.ok("track-activation", key, "--instance-id", id)
	}
	c.ok("deactivate", key, "--instance-id", "c")
	before := c.ok("--json", "list-events", "--since", "1h").stdout
	var evs []map[string]any
	json.Unmarshal([]byte(before), &evs)
	if len(evs) < 6 {
		t.Fatalf("%d events before maintain", len(evs))
	}
	type shown struct {
		Seats []struct {
			InstanceID string `json:"instance_id"`
		} `json:"activations"`
		Events []map[string]any `json:"last_events"`
	}
	var show shown
	if err := json.Unmarshal([]byte(c.ok("--json", "show-license", key).stdout), &show); err != nil || len(show.Seats) != 3 || len(show.Events) < 5 {
		t.Fatalf("show-license before maintain: %+v (%v)", show, err)
	}
	r := c.ok("--json", "maintain", "--retention-days", "0")
	var rep struct {
		EventsArchived int      `json:"events_archived"`
		Files          []string `json:"archive_files"`
		SizeBefore     int64    `json:"size_before"`
		SizeAfter      int64    `json:"size_after"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.EventsArchived != len(evs) || rep.SizeBefore == 0 {
		t.Fatalf("maintain: %s (%v), want %d events archived", r.stdout, err, len(evs))
	}
	if archiveDir != "" {
		raw, err := os.ReadFile(filepath.Join(archiveDir, rep.Files[0]))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if n := strings.Count(string(plain), "\n"); n != len(evs) {
			t.Fatalf("archive has %d lines, want %d", n, len(evs))
		}
	}
	if got := c.ok("--json", "list-events").stdout; strings.TrimSpace(got) != "[]" {
		t.Fatalf("events left in the database: %s", got)
	}
	if got := c.ok("--json", "list-events", "--since", "1h").stdout; got != before {
		t.Fatalf("list-events across the boundary:\n%s\nwant\n%s", got, before)
	}
	jl := c.ok("export-events", "--since", "1h", "--format", "jsonl").stdout
	if n := strings.Count(jl, "\n"); n != len(evs) {
		t.Fatalf("export-events jsonl: %d lines, want %d", n, len(evs))
	}
	csv := c.ok("export-events", "--since", "1h", "--format", "csv").stdout
	if !strings.HasPrefix(csv, "id,at,kind,actor") || strings.Count(csv, "\n") != len(evs)+1 {
		t.Fatalf("export-events csv:\n%s", csv)
	}
	c.fails(2, "BAD_REQUEST", "jsonl", "export-events", "--since", "1h", "--format", "xml")
	// show-license: the same seats (c's, which ended, from the archive)
	// and the same latest events.
	var after shown
	err := json.Unmarshal([]byte(c.ok("--json", "show-license", key).stdout), &after)
	for _, sh := range []shown{show, after} { // seats first seen in one second: in any order
		sort.Slice(sh.Seats, func(i, j int) bool { return sh.Seats[i].InstanceID < sh.Seats[j].InstanceID })
	}
	if err != nil || fmt.Sprint(after) != fmt.Sprint(show) {
		t.Fatalf("show-license across the boundary:\n%+v\nwant\n%+v", after, show)
	}
	// Seats still work; a run keeping 90 days has nothing to do; the
	// default (0) moves the new event.
	c.ok("track-activation", key, "--instance-id", "d")
	r = c.ok("--json", "maintain", "--retention-days", "90")
	rep.EventsArchived = -1
	if json.Unmarshal([]byte(r.stdout), &rep); rep.EventsArchived != 0 {
		t.Fatalf("maintain keeping 90 days: %s", r.stdout)
	}
	r = c.ok("--json", "maintain")
	if json.Unmarshal([]byte(r.stdout), &rep); rep.EventsArchived != 1 {
		t.Fatalf("maintain at the default: %s", r.stdout)
	}
	c.ok("vacuum")
}

func TestMaintainLocal(t *testing.T) {
	c := newCLI(t)
	db, _ := c.setup()
	maintainAcrossTheBoundary(t, c, db+".archive")
	info, err := os.Stat(db + ".archive")
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("archive directory %v %v, want 0700", info, err)
	}
}

func TestMaintainS3(t *testing.T) {
	srv := s3test.StartVersity(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")
	maintainAcrossTheBoundary(t, c, "")
}
