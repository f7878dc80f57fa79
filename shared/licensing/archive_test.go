package licensing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// history makes events over 120 days: activations every day.
func history(t *testing.T, e *env) string {
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 500; r.MaxActivationsPerDay = 1000 }).Key
	for d := range 120 {
		if err := e.activate(key, fmt.Sprintf("day-%d", d)); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(24 * time.Hour)
	}
	return key
}

func allEvents(t *testing.T, e *env, archive licensing.Archive) []licensing.Event {
	t.Helper()
	evs, err := e.svc.EventsWithArchive(context.Background(), archive, licensing.EventFilter{Since: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestMaintainArchivesThenDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := history(t, e)
	archive := e.store.Archive()
	before := allEvents(t, e, archive)
	dbBefore := e.eventCount()
	rep, err := e.svc.Maintain(ctx, archive, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsArchived == 0 || len(rep.ArchiveFilesWritten) == 0 {
		t.Fatalf("nothing archived: %+v", rep)
	}
	if got := e.eventCount(); got != dbBefore-rep.EventsArchived {
		t.Fatalf("%d events left in the database, want %d", got, dbBefore-rep.EventsArchived)
	}
	// Everything is still there, read across the boundary, in order, once.
	after := allEvents(t, e, archive)
	if len(after) != len(before) {
		t.Fatalf("%d events across archive and database, want %d", len(after), len(before))
	}
	for i := range before {
		if after[i] != before[i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, after[i], before[i])
		}
	}
	// The archive is gzipped JSON lines, one event a line.
	raw, err := os.ReadFile(filepath.Join(archive.Location(), rep.ArchiveFilesWritten[0]))
	if err != nil {
		t.Fatal(err)
	}
	zr, _ := gzip.NewReader(bytes.NewReader(raw))
	plain, _ := io.ReadAll(zr)
	var first licensing.Event
	if err := json.NewDecoder(bytes.NewReader(plain)).Decode(&first); err != nil || first.ID != before[0].ID {
		t.Fatalf("archive's first line: %+v %v", first, err)
	}
	// list-events with --since past the retention reaches the archive; a
	// license filter applies there too.
	since := e.clock.now().Add(-100 * 24 * time.Hour)
	evs, _ := e.svc.EventsWithArchive(ctx, archive, licensing.EventFilter{Since: since, LicenseID: key})
	for _, ev := range evs {
		if ev.At.Before(since) || ev.LicenseID == "" {
			t.Fatalf("filter not applied to archived events: %+v", ev)
		}
	}
	if len(evs) < 95 {
		t.Fatalf("%d events since 100 days ago, want the archived ones too", len(evs))
	}
	// Again: nothing more to do.
	if rep, err := e.svc.Maintain(ctx, archive, 90*24*time.Hour); err != nil || rep.EventsArchived != 0 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
	// Retention 0: everything up to now.
	if rep, err := e.svc.Maintain(ctx, archive, 0); err != nil || e.eventCount() != 0 || rep.EventsArchived == 0 {
		t.Fatalf("retention 0: %+v %v, %d left", rep, err, e.eventCount())
	}
	if got := allEvents(t, e, archive); len(got) != len(before) {
		t.Fatalf("%d events after archiving everything, want %d", len(got), len(before))
	}
}

// The append-only guarantee holds for everything but the archiving path:
// an event no archive covers cannot be deleted.
func TestUnarchivedEventsCannotBeDeleted(t *testing.T) {
	e := newEnv(t)
	history(t, e)
	db, err := sql.Open("sqlite3", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM events WHERE id = 1"); err == nil {
		t.Fatal("an unarchived event was deleted")
	}
	if _, err := db.Exec("DELETE FROM deliveries"); err != nil {
		t.Fatal(err) // none yet: nothing to refuse
	}
	if _, err := e.svc.Maintain(context.Background(), e.store.Archive(), 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow("SELECT count(*) FROM events").Scan(&n)
	if _, err := db.Exec("DELETE FROM events"); err == nil {
		t.Fatal("events newer than every archive were deleted")
	}
	if _, err := db.Exec("DELETE FROM archives"); err == nil {
		t.Fatal("an archive record was deleted")
	}
}

// crashingArchive fails the read-back after its first write: the process
// died between writing the archive and deleting the rows.
type crashingArchive struct {
	licensing.Archive
	mu      sync.Mutex
	crashed bool
}

func (c *crashingArchive) Read(ctx context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.crashed {
		c.crashed = true
		return nil, errors.New("killed")
	}
	return c.Archive.Read(ctx, name)
}

func TestCrashBetweenArchiveAndDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	history(t, e)
	archive := e.store.Archive()
	before := allEvents(t, e, archive)
	if _, err := e.svc.Maintain(ctx, &crashingArchive{Archive: archive}, 90*24*time.Hour); err == nil {
		t.Fatal("the crash went unnoticed")
	}
	// The archive file exists, the events are all still in the database.
	files, _ := filepath.Glob(filepath.Join(archive.Location(), "events-*.jsonl.gz"))
	if len(files) != 1 || e.eventCount() != len(before) {
		t.Fatalf("after the crash: files %v, %d events in the database (want %d)", files, e.eventCount(), len(before))
	}
	// The next run finds the file, checks it and finishes: nothing lost,
	// nothing twice.
	if _, err := e.svc.Maintain(ctx, archive, 90*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if after := allEvents(t, e, archive); len(after) != len(before) {
		t.Fatalf("%d events after recovery, want %d", len(after), len(before))
	}
}

func TestConcurrentMaintainRuns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	history(t, e)
	archive := e.store.Archive()
	before := allEvents(t, e, archive)
	other, err := sqlitestore.Open(ctx, e.path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	services := []*licensing.Service{e.svc, licensing.New(licensing.Config{Store: other, Actor: "test2", Secret: secret, Now: e.clock.now})}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := services[i%2].Maintain(ctx, archive, 90*24*time.Hour); err != nil {
				t.Errorf("maintain %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if after := allEvents(t, e, archive); len(after) != len(before) {
		t.Fatalf("%d events after concurrent runs, want %d", len(after), len(before))
	}
}

// Seats that ended move to the archive; live seats stay; show-license
// shows both.
func TestMaintainArchivesEndedSeats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 10; r.LeaseSeconds = 3600; r.ExpiresDays = 3650 }).Key
	e.activate(key, "dead")        // lease runs out in an hour
	e.activate(key, "deactivated") // deactivated now: its seat taken until its lease ends, in an hour
	e.svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: "deactivated"})
	e.clock.advance(100 * 24 * time.Hour)
	e.activate(key, "live")
	rep, err := e.svc.Maintain(ctx, e.store.Archive(), 90*24*time.Hour)
	if err != nil || rep.ActivationsArchived != 2 || len(rep.ArchiveFilesWritten) == 0 {
		t.Fatalf("archived %d seats in %v (%v), want 2", rep.ActivationsArchived, rep.ArchiveFilesWritten, err)
	}
	acts, _ := e.svc.Activations(ctx, key)
	if len(acts) != 1 || acts[0].InstanceID != "live" {
		t.Fatalf("activations left: %+v", acts)
	}
	d, err := e.svc.ShowLicense(ctx, e.store.Archive(), key, false)
	if err != nil {
		t.Fatal(err)
	}
	var seats []string
	for _, a := range d.Activations {
		seats = append(seats, a.InstanceID+":"+a.State(e.clock.now()))
	}
	if fmt.Sprint(seats) != "[dead:expired deactivated:deactivated live:live]" {
		t.Fatalf("show-license seats %v, want the archived two and the live one", seats)
	}
	// Nothing more to move: a second run writes nothing.
	if rep, err := e.svc.Maintain(ctx, e.store.Archive(), 0); err != nil || rep.ActivationsArchived != 0 {
		t.Fatalf("second run: %+v, %v", rep, err)
	}
}

// killingArchive is the archive of a child process that SIGKILLs itself at
// one step of maintain: a real crash, with no deferred clean-up, no close of
// the database and whatever SQLite has on disk at that instant.
type killingArchive struct {
	licensing.Archive
	at string // "create": after the archive file is written; "read": after it is read back
}

func (k killingArchive) Create(ctx context.Context, name string, data []byte) error {
	err := k.Archive.Create(ctx, name, data)
	if k.at == "create" {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return err
}

func (k killingArchive) Read(ctx context.Context, name string) ([]byte, error) {
	b, err := k.Archive.Read(ctx, name)
	if k.at == "read" {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return b, err
}

// maintainChild runs in the re-executed test binary (see TestMain).
func maintainChild(path, at string, now time.Time) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	svc := licensing.New(licensing.Config{Store: st, Actor: "child", Now: func() time.Time { return now }})
	if _, err := svc.Maintain(ctx, killingArchive{Archive: st.Archive(), at: at}, 90*24*time.Hour); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0) // not reached: the archive killed the process
}

// A maintain process killed by SIGKILL between writing the archive and
// deleting what it covers (and between reading it back and the delete)
// loses nothing, and the next run reads every event exactly once.
func TestMaintainKilledMidway(t *testing.T) {
	for _, at := range []string{"create", "read"} {
		t.Run(at, func(t *testing.T) {
			e := newEnv(t)
			history(t, e)
			archive := e.store.Archive()
			before := allEvents(t, e, archive)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "CAIO_TEST_MAINTAIN_CHILD="+e.path, "CAIO_TEST_KILL_AT="+at,
				"CAIO_TEST_NOW="+e.clock.now().Format(time.RFC3339))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed: %v %s", err, out)
			}
			files, _ := filepath.Glob(filepath.Join(archive.Location(), "events-*.jsonl.gz"))
			if len(files) != 1 || e.eventCount() != len(before) {
				t.Fatalf("after the kill: files %v, %d events in the database (want all %d)", files, e.eventCount(), len(before))
			}
			if after := allEvents(t, e, archive); len(after) != len(before) {
				t.Fatalf("%d events readable after the kill, want %d", len(after), len(before))
			}
			rep, err := e.svc.Maintain(context.Background(), archive, 90*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if rep.EventsArchived == 0 || e.eventCount() >= len(before) {
				t.Fatalf("the next run did not finish the move: %+v, %d events left", rep, e.eventCount())
			}
			after := allEvents(t, e, archive)
			seen := map[int64]bool{}
			for _, ev := range after {
				if seen[ev.ID] {
					t.Fatalf("event %d read twice", ev.ID)
				}
				seen[ev.ID] = true
			}
			if len(after) != len(before) {
				t.Fatalf("%d events after recovery, want %d", len(after), len(before))
			}
		})
	}
}

// A license's history over five days with a maintain at the end of each,
// at retention: at 0 (the default) spread over several archives and the
// database.
func spreadHistory(t *testing.T, e *env, retention time.Duration) licensing.Issued {
	t.Helper()
	ctx := context.Background()
	is := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 50; r.MaxActivationsPerDay = 1000 })
	other := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 50 }) // its history is not is's
	for _, d := range []licensing.Delivery{
		{LicenseID: is.License.ID, Kind: licensing.DeliveryLicense, Recipient: "ops@acme.test", Provider: "smtp", Outcome: licensing.OutcomeSent},
		{LicenseID: is.License.ID, Kind: licensing.DeliveryReminder, ThresholdDays: 30, Recipient: "ops@acme.test", Provider: "smtp", Outcome: licensing.OutcomeFailed, Error: "450 mailbox busy"},
		{LicenseID: other.License.ID, Kind: licensing.DeliveryLicense, Recipient: "ops@acme.test", Provider: "smtp", Outcome: licensing.OutcomeFailed, Error: "550 no such user"},
	} {
		if err := e.svc.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for day := range 5 {
		for i := range 6 {
			id := fmt.Sprintf("d%d-i%d", day, i)
			if err := e.activate(is.Key, id); err != nil {
				t.Fatal(err)
			}
			if err := e.activate(other.Key, id); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: id, Immediate: true}); err != nil {
				t.Fatal(err)
			}
			e.clock.advance(time.Minute)
		}
		e.clock.advance(24 * time.Hour)
		if _, err := e.svc.Maintain(ctx, e.store.Archive(), retention); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.activate(is.Key, "today"); err != nil { // in the database
		t.Fatal(err)
	}
	return is
}

// show-license reads across the boundary: its latest events, every
// delivery and the latest seats that ended come from the archives when the
// database no longer holds them.
func TestShowLicenseReadsTheArchives(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := spreadHistory(t, e, 0)
	all, err := e.svc.EventsWithArchive(ctx, e.store.Archive(), licensing.EventFilter{LicenseID: is.Key, Since: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 40 {
		t.Fatalf("%d events of the license in all", len(all))
	}
	held, _ := e.svc.Events(ctx, licensing.EventFilter{LicenseID: is.Key})
	if len(held) != 1 {
		t.Fatalf("the database holds %d of the license's events, want 1 (the rest archived)", len(held))
	}

	d, err := e.svc.ShowLicense(ctx, e.store.Archive(), is.Key, false)
	if err != nil {
		t.Fatal(err)
	}
	// The latest 20 events, in order: the one held and 19 archived.
	if want := all[len(all)-20:]; fmt.Sprint(d.Events) != fmt.Sprint(want) {
		t.Fatalf("show-license events:\n%v\nwant the latest 20:\n%v", d.Events, want)
	}
	// Every delivery of this license (and none of the other's).
	if len(d.Deliveries) != 2 || d.Deliveries[0].Kind != licensing.DeliveryLicense || d.Deliveries[1].Error != "450 mailbox busy" {
		t.Fatalf("show-license deliveries: %+v", d.Deliveries)
	}
	// The live seat, and the 20 that ended last (of 30), oldest first.
	var seats []string
	for _, a := range d.Activations {
		if a.LicenseID != is.License.ID {
			t.Fatalf("a seat of another license: %+v", a)
		}
		seats = append(seats, a.InstanceID)
	}
	if len(seats) != 21 || seats[0] != "d1-i4" || seats[19] != "d4-i5" || seats[20] != "today" {
		t.Fatalf("show-license seats: %v, want d1-i4 .. d4-i5 (archived) and today", seats)
	}

	// The same without the archive: only what the database holds.
	d, err = e.svc.ShowLicense(ctx, nil, is.Key, false)
	if err != nil || len(d.Events) != 1 || len(d.Deliveries) != 0 || len(d.Activations) != 1 {
		t.Fatalf("without the archive: %d events, %d deliveries, %d seats (%v)", len(d.Events), len(d.Deliveries), len(d.Activations), err)
	}
}

// The report's window reads across the boundary: the seat activity and
// the deliveries (counts and failures) that the archives hold.
func TestReportReadsTheArchives(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	spreadHistory(t, e, 0)
	check := func(rep licensing.ReportData) {
		t.Helper()
		activity := map[string]int{}
		for _, c := range rep.Activity {
			activity[c.Kind] += c.Count
		}
		// 2 licenses x 6 instances x 5 days, and today's; 30 deactivated.
		if activity[licensing.EventActivationCreated] != 61 || activity[licensing.EventActivationDeactivated] != 30 {
			t.Fatalf("activity %v (%+v), want 61 created, 30 deactivated", activity, rep.Activity)
		}
		counts := map[string]int{}
		for _, c := range rep.Deliveries {
			counts[c.Kind+"/"+c.Outcome] = c.Count
		}
		if counts["license/sent"] != 1 || counts["license/failed"] != 1 || counts["reminder/failed"] != 1 || len(counts) != 3 {
			t.Fatalf("delivery counts %v", counts)
		}
		if len(rep.Failures) != 2 || rep.Failures[0].Error != "550 no such user" || rep.Failures[1].Error != "450 mailbox busy" {
			t.Fatalf("failures, latest first: %+v", rep.Failures)
		}
	}
	rep, err := e.svc.Report(ctx, e.store.Archive(), 90)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.ArchivedDays {
		t.Fatal("the report does not say it read the archives")
	}
	check(rep)
	// Without the archive, the archived part is missing.
	if rep, err := e.svc.Report(ctx, nil, 90); err != nil || len(rep.Deliveries) != 0 || len(rep.Failures) != 0 || rep.ArchivedDays {
		t.Fatalf("without the archive the report found deliveries: %+v (%v)", rep.Deliveries, err)
	}
	// The same history kept in the database (90 days): the same figures.
	kept := newEnv(t)
	spreadHistory(t, kept, 90*24*time.Hour)
	if rep, err := kept.svc.Report(ctx, kept.store.Archive(), 90); err != nil || rep.ArchivedDays {
		t.Fatalf("kept in the database: archived days %v, %v", rep.ArchivedDays, err)
	} else {
		check(rep)
	}
}

// What the rules depend on stays in the database at retention 0: the
// seats granted today (the churn limit), the reminder claims of an expiry
// still ahead (no reminder twice), the refusal counts, the seats still
// taken.
func TestRetentionZeroKeepsWhatTheRulesNeed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 10; r.MaxActivationsPerDay = 3; r.ExpiresDays = 5 })
	for _, id := range []string{"a", "b", "c"} {
		if err := e.activate(is.Key, id); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, e.activate(is.Key, "d"), licensing.CodeTooManyActivations) // counted as a refusal
	// b gives its seat back (taken until its lease ends; the refusal rides
	// along); the operator frees c's.
	if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: "c", Immediate: true}); err != nil {
		t.Fatal(err)
	}
	due, err := e.svc.DueReminders(ctx, []int{7})
	if err != nil || len(due) != 1 {
		t.Fatalf("due reminders %v, %v", due, err)
	}
	if ok, err := e.svc.ClaimReminder(ctx, due[0]); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := e.svc.FinishReminder(ctx, due[0], licensing.Delivery{LicenseID: is.License.ID, Kind: licensing.DeliveryReminder,
		ThresholdDays: 7, Recipient: "ops@acme.test", Provider: "smtp", Outcome: licensing.OutcomeSent}); err != nil {
		t.Fatal(err)
	}

	rep, err := e.svc.Maintain(ctx, e.store.Archive(), 0)
	if err != nil || rep.EventsArchived == 0 || rep.DeliveriesArchived != 1 || rep.ActivationsArchived != 1 || rep.ClaimsArchived != 0 {
		t.Fatalf("maintain at 0: %+v, %v; want events, the delivery and c's seat archived, the claim kept", rep, err)
	}
	if n := e.eventCount(); n != 0 {
		t.Fatalf("%d events left", n)
	}
	// The seats still taken stay: a live, b releasing.
	d, err := e.svc.ShowLicense(ctx, nil, is.Key, false)
	if err != nil || d.ActiveInstances != 2 || len(d.Activations) != 2 {
		t.Fatalf("seats held after maintain: %d of %d rows (%v)", d.ActiveInstances, len(d.Activations), err)
	}
	// The churn limit still counts today's three grants.
	wantCode(t, e.activate(is.Key, "e"), licensing.CodeTooManyActivations)
	// The reminder is not due again.
	if due, err := e.svc.DueReminders(ctx, []int{7}); err != nil || len(due) != 0 {
		t.Fatalf("reminder due again after maintain: %v, %v", due, err)
	}
	// The refusals recorded stay.
	got, err := e.svc.Refusals(ctx, time.Unix(0, 0))
	if err != nil || len(got) != 1 || got[0].Code != licensing.CodeTooManyActivations {
		t.Fatalf("refusals after maintain: %+v, %v", got, err)
	}
	// A day later the limit lets seats be taken again.
	e.clock.advance(24*time.Hour + time.Second)
	if err := e.activate(is.Key, "e"); err != nil {
		t.Fatal(err)
	}
}
