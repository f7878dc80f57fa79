package licensing

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Retention keeps the database the size of what is live: history older
// than the retention moves to archive files beside the database
// (compressed JSON lines, one record per line), written once each, read
// back and counted before the same rows are deleted. The triggers that keep
// the event log append-only let a row be deleted only when an archive that
// covers it is recorded in the same database (table archives).
//
// The readers of history read across the boundary: list-events and
// export-events (EventsWithArchive), list-deliveries (DeliveriesWithArchive),
// show-license (ShowLicense: the latest events, the deliveries, the latest
// seats that ended) and the report (Report: its charts and counts of the
// window).

// Archive holds archive files, each written once.
type Archive interface {
	// Create writes name with data unless it exists (ErrArchiveExists).
	Create(ctx context.Context, name string, data []byte) error
	// Read returns the whole of name.
	Read(ctx context.Context, name string) ([]byte, error)
	// Location names the archive for messages.
	Location() string
}

// ErrArchiveExists is Create's answer for a name already written.
var ErrArchiveExists = errors.New("archive file exists")

// Archive kinds.
const (
	ArchiveEvents         = "events"
	ArchiveDeliveries     = "deliveries"
	ArchiveReminderClaims = "reminder_claims"
	// ArchiveActivations holds seats that ended (Activation records).
	ArchiveActivations = "activations"
)

// ArchiveRecord is one archive file as the database remembers it.
type ArchiveRecord struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// FirstID..LastID are the ids covered (events, deliveries): the rows of
	// that range older than Cutoff.
	FirstID   int64     `json:"first_id"`
	LastID    int64     `json:"last_id"`
	Cutoff    time.Time `json:"cutoff"`
	Count     int       `json:"count"`
	FirstAt   time.Time `json:"first_at"`
	LastAt    time.Time `json:"last_at"`
	CreatedAt time.Time `json:"created_at"`
}

// DefaultRetentionDays is how long history stays in the database: none.
// Each maintain (daily in AWS) moves all the history there is to the
// archives, so the database every cold start loads holds the live state
// and the history since the last maintain: a day's at most (docs/design.md,
// Growth, measures it against 90 days). Readers of history read the
// archives too (see above); an operator may keep more in the database
// (CAIO_EVENT_RETENTION_DAYS, maintain --retention-days).
const DefaultRetentionDays = 0

// archiveBatch bounds one archive file.
const archiveBatch = 50000

// MaintainReport says what Maintain moved.
type MaintainReport struct {
	Cutoff              time.Time `json:"cutoff"`
	EventsArchived      int       `json:"events_archived"`
	DeliveriesArchived  int       `json:"deliveries_archived"`
	ClaimsArchived      int       `json:"reminder_claims_archived"`
	ActivationsArchived int       `json:"activations_archived"`
	ArchiveFilesWritten []string  `json:"archive_files"`
}

// Maintain moves history older than retention to the archive: events,
// deliveries, reminder claims whose license expiry has passed, and seats
// that ended (deactivated, or whose lease ran out) before it. It is
// idempotent and safe to run concurrently with anything: each step is an
// archive written once and a unit of work that deletes only what an
// archive covers.
func (s *Service) Maintain(ctx context.Context, archive Archive, retention time.Duration) (MaintainReport, error) {
	now := s.now()
	cutoff := now.Add(-retention)
	if retention == 0 {
		// Up to now, the current second included (times are kept to the second).
		cutoff = now.Add(time.Second)
	}
	rep := MaintainReport{Cutoff: cutoff, ArchiveFilesWritten: []string{}}
	if archive == nil {
		return rep, Errorf(CodeConfig, "this database has no archive to move history to")
	}
	for _, kind := range []string{ArchiveEvents, ArchiveDeliveries} {
		for {
			n, name, err := s.archiveBatch(ctx, archive, kind, rep.Cutoff)
			if err != nil {
				return rep, err
			}
			if n == 0 {
				break
			}
			rep.ArchiveFilesWritten = append(rep.ArchiveFilesWritten, name)
			if kind == ArchiveEvents {
				rep.EventsArchived += n
			} else {
				rep.DeliveriesArchived += n
			}
		}
	}
	n, name, err := s.archiveClaims(ctx, archive, rep.Cutoff, now)
	if err != nil {
		return rep, err
	}
	if n > 0 {
		rep.ClaimsArchived = n
		rep.ArchiveFilesWritten = append(rep.ArchiveFilesWritten, name)
	}
	for {
		n, name, err := s.archiveSeats(ctx, archive, rep.Cutoff)
		if err != nil || n == 0 {
			return rep, err
		}
		rep.ActivationsArchived += n
		rep.ArchiveFilesWritten = append(rep.ArchiveFilesWritten, name)
	}
}

// archiveBatch archives up to archiveBatch rows of kind older than cutoff.
func (s *Service) archiveBatch(ctx context.Context, archive Archive, kind string, cutoff time.Time) (int, string, error) {
	var rows []ArchivedRow
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		rows, err = tx.OldRows(kind, cutoff, archiveBatch)
		return err
	})
	if err != nil || len(rows) == 0 {
		return 0, "", err
	}
	first, last := rows[0], rows[len(rows)-1]
	rec := ArchiveRecord{Name: fmt.Sprintf("%s-%012d-%012d.jsonl.gz", kind, first.ID, last.ID), Kind: kind,
		FirstID: first.ID, LastID: last.ID, Cutoff: cutoff, Count: len(rows), FirstAt: first.At, LastAt: last.At, CreatedAt: s.now()}
	if err := writeArchive(ctx, archive, rec, rows); err != nil {
		return 0, "", err
	}
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		if err := tx.InsertArchive(rec); err != nil && ErrorCode(err) != CodeAlreadyExists {
			return err
		}
		_, err := tx.DeleteArchived(kind, rec.FirstID, rec.LastID, cutoff)
		return err
	})
	return len(rows), rec.Name, err
}

// archiveClaims archives reminder claims made before cutoff for expiries
// already past (a claim is kept while its license's expiry is ahead).
func (s *Service) archiveClaims(ctx context.Context, archive Archive, cutoff, now time.Time) (int, string, error) {
	var claims []ReminderClaim
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		claims, err = tx.StaleReminderClaims(cutoff, now)
		return err
	})
	if err != nil || len(claims) == 0 {
		return 0, "", err
	}
	rows := make([]ArchivedRow, len(claims))
	for i, c := range claims {
		rows[i] = ArchivedRow{At: c.ClaimedAt, Record: c}
	}
	rec := ArchiveRecord{Name: fmt.Sprintf("%s-%d-%d.jsonl.gz", ArchiveReminderClaims, cutoff.Unix(), len(claims)), Kind: ArchiveReminderClaims,
		Cutoff: cutoff, Count: len(claims), FirstAt: claims[0].ClaimedAt, LastAt: claims[len(claims)-1].ClaimedAt, CreatedAt: s.now()}
	if err := writeArchive(ctx, archive, rec, rows); err != nil {
		return 0, "", err
	}
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		if err := tx.InsertArchive(rec); err != nil && ErrorCode(err) != CodeAlreadyExists {
			return err
		}
		_, err := tx.DeleteStaleReminderClaims(cutoff, now)
		return err
	})
	return len(claims), rec.Name, err
}

// archiveSeats archives up to archiveBatch seats that ended before cutoff,
// then deletes them: those still as archived (a seat its instance took
// again in between stays, to be archived when it ends). It returns how
// many it deleted: none ends Maintain's loop. The file is named for its
// contents, so a run that crashed before its delete and the run after it
// write the same file.
func (s *Service) archiveSeats(ctx context.Context, archive Archive, cutoff time.Time) (int, string, error) {
	var seats []Activation
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		seats, err = tx.EndedActivations(cutoff, archiveBatch)
		return err
	})
	if err != nil || len(seats) == 0 {
		return 0, "", err
	}
	rows := make([]ArchivedRow, len(seats))
	rec := ArchiveRecord{Kind: ArchiveActivations, Cutoff: cutoff, Count: len(seats), CreatedAt: s.now()}
	for i, a := range seats {
		end := a.Ended()
		rows[i] = ArchivedRow{At: end, Record: a}
		if i == 0 || end.Before(rec.FirstAt) {
			rec.FirstAt = end
		}
		if end.After(rec.LastAt) {
			rec.LastAt = end
		}
	}
	data, err := encodeArchive(rows)
	if err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(data)
	rec.Name = fmt.Sprintf("%s-%d-%x.jsonl.gz", ArchiveActivations, cutoff.Unix(), sum[:8])
	if err := createArchive(ctx, archive, rec, data, len(rows)); err != nil {
		return 0, "", err
	}
	var deleted int64
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		if err := tx.InsertArchive(rec); err != nil && ErrorCode(err) != CodeAlreadyExists {
			return err
		}
		deleted, err = tx.DeleteEndedActivations(seats, cutoff)
		return err
	})
	return int(deleted), rec.Name, err
}

// ArchivedRow is one record bound for an archive: its id and time (for
// events and deliveries) and the record itself.
type ArchivedRow struct {
	ID     int64
	At     time.Time
	Record any
}

// writeArchive writes the rows as gzipped JSON lines, once, and reads them
// back: the rows are deleted only after the file is known to hold them all.
// A file left by an earlier run that crashed before its delete is checked
// the same way and reused.
func writeArchive(ctx context.Context, archive Archive, rec ArchiveRecord, rows []ArchivedRow) error {
	data, err := encodeArchive(rows)
	if err != nil {
		return err
	}
	return createArchive(ctx, archive, rec, data, len(rows))
}

// encodeArchive is rows as gzipped JSON lines (the same rows, the same bytes).
func encodeArchive(rows []ArchivedRow) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := json.NewEncoder(zw)
	for _, r := range rows {
		if err := enc.Encode(r.Record); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// createArchive writes data as rec.Name once (or finds it written) and
// checks that the file holds want records.
func createArchive(ctx context.Context, archive Archive, rec ArchiveRecord, data []byte, want int) error {
	err := archive.Create(ctx, rec.Name, data)
	if err != nil && !errors.Is(err, ErrArchiveExists) {
		return Wrap(CodeBusy, err, "cannot write archive %s in %s: %v", rec.Name, archive.Location(), err)
	}
	back, err := archive.Read(ctx, rec.Name)
	if err != nil {
		return Wrap(CodeBusy, err, "cannot read back archive %s in %s: %v", rec.Name, archive.Location(), err)
	}
	n, err := countLines(back)
	if err != nil || n != want {
		return Errorf(CodeInternal, "archive %s in %s holds %d records, want %d: nothing was deleted", rec.Name, archive.Location(), n, want)
	}
	return nil
}

func countLines(gz []byte) (int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			return n, errors.New("not JSON")
		}
		n++
	}
	return n, sc.Err()
}

// archiveReads is how many archive files are fetched at once.
const archiveReads = 8

// archiveFiles lists the archive files of kind holding records at or
// after since (all when since is zero), oldest first.
func (s *Service) archiveFiles(ctx context.Context, kind string, since time.Time) ([]ArchiveRecord, error) {
	var recs []ArchiveRecord
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		recs, err = tx.Archives(kind, since)
		return err
	})
	return recs, err
}

// scanArchives decodes the records of the files recs, file after file in
// the order given, and gives each to fn; it stops after a file when done
// says so. Files are fetched archiveReads at a time, and decoded as they
// are used: the records are never all in memory at once.
func scanArchives[T any](ctx context.Context, archive Archive, recs []ArchiveRecord, fn func(T), done func() bool) error {
	for start := 0; start < len(recs); start += archiveReads {
		batch := recs[start:min(start+archiveReads, len(recs))]
		data := make([][]byte, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, r := range batch {
			wg.Go(func() { data[i], errs[i] = archive.Read(ctx, r.Name) })
		}
		wg.Wait()
		for i, r := range batch {
			if errs[i] != nil {
				return Wrap(CodeBusy, errs[i], "cannot read archive %s in %s: %v", r.Name, archive.Location(), errs[i])
			}
			if err := decodeArchive(data[i], fn); err != nil {
				return Wrap(CodeDBInvalid, err, "archive %s in %s is damaged: restore it from a backup", r.Name, archive.Location())
			}
			data[i] = nil
			if done != nil && done() {
				return nil
			}
		}
	}
	return nil
}

func decodeArchive[T any](data []byte, fn func(T)) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(zr)
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		fn(v)
	}
	return nil
}

// readArchived decodes the records of kind archived since (zero: all),
// from every archive file the database records.
func readArchived[T any](ctx context.Context, s *Service, archive Archive, kind string, since time.Time) ([]T, error) {
	if archive == nil {
		return nil, nil
	}
	recs, err := s.archiveFiles(ctx, kind, since)
	if err != nil {
		return nil, err
	}
	var out []T
	err = scanArchives(ctx, archive, recs, func(v T) { out = append(out, v) }, nil)
	return out, err
}

// latestArchived reads the archives of kind holding records at or after
// since, newest file first, and gives fn each record; it stops after the
// file in which enough says there are enough. The files of a kind cover
// successive stretches of time, so the records found first are the latest.
func latestArchived[T any](ctx context.Context, s *Service, archive Archive, kind string, since time.Time, fn func(T), enough func() bool) error {
	if archive == nil || enough() {
		return nil
	}
	recs, err := s.archiveFiles(ctx, kind, since)
	if err != nil {
		return err
	}
	slices.Reverse(recs)
	return scanArchives(ctx, archive, recs, fn, enough)
}

// EventsWithArchive lists events like Events and, when the filter reaches
// back past what the database holds (Since set and older than its oldest
// event), the archived ones too: merged by id, duplicates dropped.
func (s *Service) EventsWithArchive(ctx context.Context, archive Archive, f EventFilter) ([]Event, error) {
	live, err := s.Events(ctx, f)
	if err != nil || f.Since.IsZero() {
		return live, err
	}
	old, err := readArchived[Event](ctx, s, archive, ArchiveEvents, f.Since)
	if err != nil {
		return nil, err
	}
	licenseID := ""
	if f.LicenseID != "" {
		var err error
		if licenseID, err = s.licenseIDOf(ctx, f.LicenseID); err != nil {
			return nil, err
		}
	}
	seen := map[int64]bool{}
	out := make([]Event, 0, len(old)+len(live))
	for _, e := range append(old, live...) {
		if seen[e.ID] || e.At.Before(f.Since) || (licenseID != "" && e.LicenseID != licenseID) {
			continue
		}
		seen[e.ID] = true
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeliveriesWithArchive is Deliveries since a time, archived ones included.
func (s *Service) DeliveriesWithArchive(ctx context.Context, archive Archive, ref string, since time.Time) ([]Delivery, error) {
	live, err := s.Deliveries(ctx, ref)
	if err != nil {
		return nil, err
	}
	var old []Delivery
	if !since.IsZero() {
		if old, err = readArchived[Delivery](ctx, s, archive, ArchiveDeliveries, since); err != nil {
			return nil, err
		}
	}
	licenseID := ""
	if ref != "" {
		if licenseID, err = s.licenseIDOf(ctx, ref); err != nil {
			return nil, err
		}
	}
	seen := map[int64]bool{}
	out := []Delivery{}
	for _, d := range append(old, live...) {
		if seen[d.ID] || d.At.Before(since) || (licenseID != "" && d.LicenseID != licenseID) {
			continue
		}
		seen[d.ID] = true
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Service) licenseIDOf(ctx context.Context, ref string) (string, error) {
	var id string
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		id, err = s.optionalLicenseID(tx, ref)
		return err
	})
	return id, err
}
