// Command simulate-year plays a year of a mid-size vendor's fleet against a
// database on a simulated clock and prints the database's size over time,
// and its ratio to the live state: without maintain, with the daily
// maintain at the retention (default: licensing.DefaultRetentionDays), and
// with it archiving everything (retention 0); then an abusive key churning
// at the API's rate for an hour. Validations and activations go through a
// service with pinned keys and no secret, as in the activate function.
//
//	go run ./scripts/simulate-year [-days 365] [-customers 200] [-instances 2000] [-retention-days 0]
//
// Each instance restarts daily under a new instance id: it activates, checks
// in (validate) through the day, and at shutdown deactivates (9 in 10) or
// dies and leaves its lease to run out (1 in 10). Restarts are spread over
// the first fifth of the day, check-ins over each fifth after it. A seat
// given back stays taken until the lease it was given ends (3 days), so
// each license has seats for three days of its instances and half a day
// more.
//
// The database is kept as a process keeps it in S3 mode, which is what a
// cold start loads: a working copy in which every write records its
// operation id (kept for sqlitestore.OperationWindow), checkpointed after
// each write. It runs without fsync (sizes are the same; a year of durable
// commits would take hours).
//
// Two sizes are reported for each maintained database: right after the
// day's maintain (and compaction), and right before it, when the day's
// history is all in the file: the largest file a cold start loads. The
// live state is the state alone: every license and every seat still
// taken, no history (nor operation ids), compacted.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.days, "days", 365, "days to simulate")
	flag.IntVar(&cfg.customers, "customers", 200, "customers, one license each")
	flag.IntVar(&cfg.instances, "instances", 2000, "instances in the fleet")
	flag.IntVar(&cfg.checks, "validations-per-day", 4, "validations per instance per day (heartbeats update rows in place)")
	retention := flag.Int("retention-days", licensing.DefaultRetentionDays, "maintain's retention")
	flag.IntVar(&cfg.baseline, "baseline-days", 60, "days to run the database without maintain (it grows linearly; the rest is extrapolated); 0: none")
	flag.Parse()
	// Side by side: no maintain, the daily maintain at the retention, and
	// the daily maintain archiving everything (0).
	if cfg.baseline > 0 {
		cfg.retentions = append(cfg.retentions, -1)
	}
	cfg.retentions = append(cfg.retentions, *retention)
	if *retention != 0 {
		cfg.retentions = append(cfg.retentions, 0)
	}
	dir, err := os.MkdirTemp("", "simulate-year")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	res, err := simulate(cfg, dir, os.Stdout)
	if err == nil {
		err = res.readers(os.Stdout)
	}
	if err == nil {
		err = res.abusiveHour(os.Stdout)
	}
	res.close()
	if err != nil {
		fail(err)
	}
}

// config is a simulation's fleet and the databases it runs against.
type config struct {
	days, customers, instances, checks int
	// retentions holds one database each: the daily maintain's retention in
	// days, -1 for none.
	retentions []int
	// baseline is how many days the database without maintain runs; its
	// size after that is extrapolated.
	baseline int
}

// result is what a simulation measured.
type result struct {
	// live is the size of the state alone: every license and every seat
	// still taken, no history, compacted.
	live   int64
	fleets []*fleet
	perDay float64 // the unmaintained database's growth a day
	days   int
}

// close closes the databases.
func (r result) close() {
	for _, f := range r.fleets {
		f.store.Close()
	}
}

// fleet is the database of a retention (nil if none).
func (r result) fleet(retention int) *fleet {
	for _, f := range r.fleets {
		if f.retention == retention {
			return f
		}
	}
	return nil
}

// ratio is a size against the live state.
func (r result) ratio(n int64) float64 { return float64(n) / float64(r.live) }

func simulate(cfg config, dir string, out io.Writer) (result, error) {
	res := result{days: cfg.days}
	fmt.Fprintf(out, "%d customers, %d instances restarting daily, %d validations each a day, %d days\n\n",
		cfg.customers, cfg.instances, cfg.checks, cfg.days)
	for _, r := range cfg.retentions {
		f, err := newFleet(filepath.Join(dir, fmt.Sprintf("retention%d.db", r)), cfg.customers, cfg.instances, r)
		if err != nil {
			return res, err
		}
		res.fleets = append(res.fleets, f)
	}
	var header strings.Builder
	fmt.Fprintf(&header, "%-6s", "day")
	for _, f := range res.fleets {
		if f.retention < 0 {
			fmt.Fprintf(&header, " %14s", "no maintain")
		} else {
			fmt.Fprintf(&header, " %32s", fmt.Sprintf("retention %dd: after / before maintain", f.retention))
		}
	}
	fmt.Fprintln(out, header.String())
	errs := make([]error, len(res.fleets))
	for d := 1; d <= cfg.days; d++ {
		var wg sync.WaitGroup
		for i, f := range res.fleets {
			if f.retention < 0 && d > cfg.baseline {
				continue
			}
			wg.Go(func() {
				if errs[i] == nil {
					errs[i] = f.day(cfg.checks)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return res, fmt.Errorf("day %d: %w", d, err)
			}
		}
		if f := res.fleet(-1); f != nil && d == cfg.baseline {
			res.perDay = float64(f.size()) / float64(d)
		}
		if d%30 == 0 || d == cfg.days {
			fmt.Fprintf(out, "%-6d", d)
			for _, f := range res.fleets {
				switch {
				case f.retention >= 0:
					fmt.Fprintf(out, " %14.2f MB / %10.2f MB", mb(f.size()), mb(f.before))
				case d > cfg.baseline:
					fmt.Fprintf(out, " ~%10.2f MB", mb(int64(res.perDay*float64(d))))
				default:
					fmt.Fprintf(out, " %11.2f MB", mb(f.size()))
				}
			}
			fmt.Fprintln(out)
		}
	}
	live, err := res.fleets[len(res.fleets)-1].liveOnly(filepath.Join(dir, "live.db"))
	if err != nil {
		return res, err
	}
	res.live = live
	fmt.Fprintf(out, "\nafter %d days the live state alone is %.2f MB", cfg.days, mb(live))
	for _, f := range res.fleets {
		if f.retention < 0 {
			size, approx := f.size(), ""
			if cfg.days > cfg.baseline {
				size, approx = int64(res.perDay*float64(cfg.days)), "~" // extrapolated
			}
			fmt.Fprintf(out, "; no maintain %s%.2f MB (%.1fx)", approx, mb(size), res.ratio(size))
			continue
		}
		fmt.Fprintf(out, "; retention %dd %.2f MB after maintain (%.1fx), at most %.2f MB before it (%.1fx)",
			f.retention, mb(f.size()), res.ratio(f.size()), mb(f.peak), res.ratio(f.peak))
	}
	fmt.Fprintln(out)
	return res, nil
}

// readers times what reads history across the archive's boundary, on each
// maintained database: the report over 90 days and show-license of one
// license (on local files; in S3 each archive file read is a GET, eight at
// a time).
func (r result) readers(out io.Writer) error {
	ctx := context.Background()
	for _, f := range r.fleets {
		if f.retention < 0 {
			continue
		}
		start := time.Now()
		rep, err := f.svc.Report(ctx, f.store.Archive(), 90)
		if err != nil {
			return err
		}
		took := time.Since(start)
		start = time.Now()
		d, err := f.svc.ShowLicense(ctx, f.store.Archive(), f.keys[0], false)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "retention %dd: report over 90 days %v (%d days of activity, archives read: %v); show-license %v (%d events, %d seats)\n",
			f.retention, took.Round(time.Millisecond), days(rep.Activity), rep.ArchivedDays, time.Since(start).Round(time.Millisecond), len(d.Events), len(d.Activations))
	}
	return nil
}

func days(counts []licensing.DayCount) int {
	seen := map[string]bool{}
	for _, c := range counts {
		seen[c.Day] = true
	}
	return len(seen)
}

// abusiveHour plays an abusive key on the first maintained database: a
// one-seat license activated and deactivated under fresh instance ids at
// the API's global rate (50 requests/s) for an hour.
func (r result) abusiveHour(out io.Writer) error {
	i := slices.IndexFunc(r.fleets, func(f *fleet) bool { return f.retention >= 0 })
	if i < 0 {
		return nil
	}
	f := r.fleets[i]
	ctx := context.Background()
	before := f.size()
	key, err := f.license("CUST-0", 1)
	if err != nil {
		return err
	}
	accepted := 0
	for i := range 50 * 3600 {
		f.clk.t = f.clk.t.Add(20 * time.Millisecond)
		id := fmt.Sprintf("abuse-%d", i)
		if _, err := f.api.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: id}); err == nil {
			accepted++
			f.api.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: id})
		}
	}
	fmt.Fprintf(out, "abusive hour: %d of %d activations accepted; database %.3f MB -> %.3f MB (%+.2f%%)\n",
		accepted, 50*3600, mb(before), mb(f.size()), 100*float64(f.size()-before)/float64(before))
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// workingCopy is the database as a process holds it in S3 mode
// (shared/s3store): each write records its operation id with it, and is
// checkpointed once done (as the writer does once S3 took its delta).
type workingCopy struct {
	*sqlitestore.WorkingCopy
	now func() time.Time
}

var _ licensing.Store = workingCopy{}

// Update implements licensing.Store.
func (w workingCopy) Update(ctx context.Context, fn func(licensing.Tx) error) error {
	id := make([]byte, 16)
	rand.Read(id)
	if _, err := w.UpdateOperation(ctx, hex.EncodeToString(id), w.now(), fn); err != nil {
		return err
	}
	return w.Checkpoint(ctx)
}

// Vacuum compacts, and checkpoints the compacted pages into the file.
func (w workingCopy) Vacuum(ctx context.Context) error {
	if err := w.WorkingCopy.Vacuum(ctx); err != nil {
		return err
	}
	return w.Checkpoint(ctx)
}

type fleet struct {
	store     workingCopy
	svc       *licensing.Service // the operator's, with the secret
	api       *licensing.Service // the activate function's: pinned keys, no secret
	retention int                // days; -1: no maintain
	clk       *clock
	keys      []string
	running   []string
	gen       int
	// before is the size before the last maintain; peak the largest of
	// those (the day's history at its fullest).
	before, peak int64
}

func newFleet(path string, customers, instances, retention int) (*fleet, error) {
	ctx := context.Background()
	created, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true, Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		return nil, err
	}
	created.Close()
	wc, err := sqlitestore.OpenWorkingCopy(ctx, path, false)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			wc.Close()
		}
	}()
	f := &fleet{retention: retention, clk: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	f.store = workingCopy{WorkingCopy: wc, now: f.clk.now}
	store := f.store
	f.svc = licensing.New(licensing.Config{Store: store, Actor: "simulation", Secret: secretstrength.New(), Now: f.clk.now})
	// A seat given back stays taken until its lease ends: a license holds
	// the instances of the lease's days, and half a day's more.
	per := instances / customers
	seats := per*(licensing.DefaultLeaseSeconds/(24*3600)) + per/2
	for c := range customers {
		id := fmt.Sprintf("CUST-%d", c)
		if _, err := f.svc.AddCustomer(ctx, id, "Customer "+id, ""); err != nil {
			return nil, err
		}
		key, err := f.license(id, int64(seats))
		if err != nil {
			return nil, err
		}
		f.keys = append(f.keys, key)
	}
	pinned, err := f.svc.TrustedPublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	f.api = licensing.New(licensing.Config{Store: store, Actor: "function:activate", PublicKeys: pinned, Now: f.clk.now})
	f.running = make([]string, instances)
	ok = true
	return f, nil
}

func (f *fleet) license(customer string, seats int64) (string, error) {
	is, err := f.svc.Generate(context.Background(), licensing.GenerateRequest{CustomerID: customer, Tier: "standard",
		ExpiresDays: 3650, MaxInstances: seats, MaxServices: 50, MaxRequestsPerDay: 10000})
	return is.Key, err
}

// day restarts every instance under a new id, spread over the first
// fifth of the day (for 4 check-ins), with check-ins spread over each
// fifth after it; then runs the daily maintain (and vacuum past 1 MB
// free) if it has one.
func (f *fleet) day(checks int) error {
	ctx := context.Background()
	f.gen++
	per := len(f.running) / len(f.keys)
	step := 24 * time.Hour / time.Duration(checks+1)
	tick := step / time.Duration(len(f.running))
	for i := range f.running {
		key := f.keys[i/per%len(f.keys)]
		if old := f.running[i]; old != "" && i%10 != 0 { // 1 in 10 dies
			if _, err := f.api.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: old}); err != nil {
				return err
			}
		}
		f.running[i] = fmt.Sprintf("i-%d-%d", i, f.gen)
		if _, err := f.api.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: f.running[i]}); err != nil {
			return err
		}
		f.clk.t = f.clk.t.Add(tick)
	}
	for range checks {
		for i, id := range f.running {
			if _, err := f.api.Validate(ctx, licensing.SeatRequest{Key: f.keys[i/per%len(f.keys)], InstanceID: id}); err != nil {
				return err
			}
			f.clk.t = f.clk.t.Add(tick)
		}
	}
	f.clk.t = f.clk.t.Add(step - tick*time.Duration(len(f.running))) // the rest of the day
	if f.retention < 0 {
		return nil
	}
	f.before = f.size()
	f.peak = max(f.peak, f.before)
	if _, err := f.svc.Maintain(ctx, f.store.Archive(), time.Duration(f.retention)*24*time.Hour); err != nil {
		return err
	}
	if free, _ := f.store.FreeBytes(ctx); free > 1<<20 {
		return f.store.Vacuum(ctx)
	}
	return nil
}

func (f *fleet) size() int64 {
	n, _ := f.store.Size(context.Background())
	return n
}

// liveOnly is the size of the same database holding nothing but the live
// state: everything archived, ended seats too, no operation ids,
// compacted.
func (f *fleet) liveOnly(path string) (int64, error) {
	ctx := context.Background()
	if err := f.store.Backup(ctx, path); err != nil {
		return 0, err
	}
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		return 0, err
	}
	svc := licensing.New(licensing.Config{Store: st, Actor: "simulation", Now: f.clk.now})
	_, err = svc.Maintain(ctx, st.Archive(), 0)
	st.Close()
	if err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DELETE FROM operations"); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return 0, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "simulate-year:", err)
	os.Exit(1)
}
