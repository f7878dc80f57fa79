// Command simulate-year plays a year of a mid-size vendor's fleet against a
// database on a simulated clock and prints the database's size over time:
// without maintain, with the daily maintain at the retention, and with it
// archiving everything (retention 0); then an abusive key churning at the
// API's rate for an hour. Validations and activations go through a service
// with pinned keys and no secret, as in the activate function.
//
//	go run ./scripts/simulate-year [-days 365] [-customers 200] [-instances 2000] [-retention-days 90]
//
// Each instance restarts daily under a new instance id: it activates, checks
// in (validate) through the day, and at shutdown deactivates (9 in 10) or
// dies and leaves its lease to run out (1 in 10). The database runs without
// fsync (sizes are the same; a year of durable commits would take hours).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func main() {
	days := flag.Int("days", 365, "days to simulate")
	customers := flag.Int("customers", 200, "customers, one license each")
	instances := flag.Int("instances", 2000, "instances in the fleet")
	checks := flag.Int("validations-per-day", 4, "validations per instance per day (heartbeats update rows in place)")
	retention := flag.Int("retention-days", licensing.DefaultRetentionDays, "maintain's retention")
	baseline := flag.Int("baseline-days", 60, "days to run the database without maintain (it grows linearly; the rest is extrapolated)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "simulate-year")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%d customers, %d instances restarting daily, %d validations each a day, %d days\n\n",
		*customers, *instances, *checks, *days)
	// Three databases live the same year: no maintain, the daily maintain
	// at the retention, and the daily maintain archiving everything (0).
	fleets := []*fleet{
		newFleet(filepath.Join(dir, "without.db"), *customers, *instances, -1),
		newFleet(filepath.Join(dir, "with.db"), *customers, *instances, *retention),
		newFleet(filepath.Join(dir, "zero.db"), *customers, *instances, 0),
	}
	fmt.Printf("%-6s %14s %18s %18s\n", "day", "no maintain", fmt.Sprintf("retention %dd", *retention), "retention 0d")
	var perDay float64 // the unmaintained database's growth
	for d := 1; d <= *days; d++ {
		var wg sync.WaitGroup
		for i, f := range fleets {
			if i == 0 && d > *baseline {
				continue
			}
			wg.Go(func() { f.day(*checks) })
		}
		wg.Wait()
		if d == *baseline {
			perDay = float64(fleets[0].size()) / float64(d)
		}
		if d%30 == 0 || d == *days {
			without := fmt.Sprintf("%11.2f MB", mb(fleets[0].size()))
			if d > *baseline {
				without = fmt.Sprintf("~%10.2f MB", mb(int64(perDay*float64(d))))
			}
			fmt.Printf("%-6d %s %15.2f MB %15.2f MB\n", d, without, mb(fleets[1].size()), mb(fleets[2].size()))
		}
	}
	withoutSize := fleets[0].size()
	if *days > *baseline {
		withoutSize = int64(perDay * float64(*days)) // extrapolated ("~")
	}
	live := fleets[1].liveOnly(filepath.Join(dir, "live.db"))
	fmt.Printf("\nafter %d days: the live state alone is %.2f MB; no maintain %.2f MB (%.1fx), retention %dd %.2f MB (%.1fx), retention 0d %.2f MB (%.1fx)\n",
		*days, mb(live), mb(withoutSize), ratio(withoutSize, live), *retention, mb(fleets[1].size()), ratio(fleets[1].size(), live),
		mb(fleets[2].size()), ratio(fleets[2].size(), live))

	// An abusive key: a one-seat license activated and deactivated under
	// fresh instance ids at the API's global rate (50 requests/s) for an hour.
	with := fleets[1]
	before := with.size()
	key := with.license("CUST-0", 1)
	accepted := 0
	for i := range 50 * 3600 {
		with.clk.t = with.clk.t.Add(20 * time.Millisecond)
		id := fmt.Sprintf("abuse-%d", i)
		if _, err := with.api.Activate(context.Background(), licensing.SeatRequest{Key: key, InstanceID: id}); err == nil {
			accepted++
			with.api.Deactivate(context.Background(), licensing.SeatRequest{Key: key, InstanceID: id})
		}
	}
	fmt.Printf("abusive hour: %d of %d activations accepted; database %.3f MB -> %.3f MB (%+.2f%%)\n",
		accepted, 50*3600, mb(before), mb(with.size()), 100*float64(with.size()-before)/float64(before))
}

func ratio(a, b int64) float64 { return float64(a) / float64(b) }

type fleet struct {
	store     *sqlitestore.Store
	svc       *licensing.Service // the operator's, with the secret
	api       *licensing.Service // the activate function's: pinned keys, no secret
	retention int                // days; -1: no maintain
	clk       *clock
	keys      []string
	running   []string
	gen       int
}

func newFleet(path string, customers, instances, retention int) *fleet {
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true, Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		fail(err)
	}
	f := &fleet{store: store, retention: retention, clk: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	f.svc = licensing.New(licensing.Config{Store: store, Actor: "simulation", Secret: secretstrength.New(), Now: f.clk.now})
	per := instances / customers
	for c := range customers {
		id := fmt.Sprintf("CUST-%d", c)
		if _, err := f.svc.AddCustomer(ctx, id, "Customer "+id, ""); err != nil {
			fail(err)
		}
		f.keys = append(f.keys, f.license(id, int64(per+per/2)))
	}
	pinned, err := f.svc.TrustedPublicKeys(ctx)
	if err != nil {
		fail(err)
	}
	f.api = licensing.New(licensing.Config{Store: store, Actor: "function:activate", PublicKeys: pinned, Now: f.clk.now})
	f.running = make([]string, instances)
	return f
}

func (f *fleet) license(customer string, seats int64) string {
	is, err := f.svc.Generate(context.Background(), licensing.GenerateRequest{CustomerID: customer, Tier: "standard",
		ExpiresDays: 3650, MaxInstances: seats, MaxServices: 50, MaxRequestsPerDay: 10000})
	if err != nil {
		fail(err)
	}
	return is.Key
}

// day restarts every instance under a new id, with check-ins in between,
// then runs the daily maintain (and vacuum past 1 MB free) if it has one.
func (f *fleet) day(checks int) {
	ctx := context.Background()
	f.gen++
	per := len(f.running) / len(f.keys)
	for i := range f.running {
		key := f.keys[i/per%len(f.keys)]
		if old := f.running[i]; old != "" && i%10 != 0 { // 1 in 10 dies
			f.api.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: old})
		}
		f.running[i] = fmt.Sprintf("i-%d-%d", i, f.gen)
		if _, err := f.api.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: f.running[i]}); err != nil {
			fail(fmt.Errorf("day %d: %w", f.gen, err))
		}
	}
	step := 24 * time.Hour / time.Duration(checks+1)
	for range checks {
		f.clk.t = f.clk.t.Add(step)
		for i, id := range f.running {
			f.api.Validate(ctx, licensing.SeatRequest{Key: f.keys[i/per%len(f.keys)], InstanceID: id})
		}
	}
	f.clk.t = f.clk.t.Add(step)
	if f.retention < 0 {
		return
	}
	if _, err := f.svc.Maintain(ctx, f.store.Archive(), time.Duration(f.retention)*24*time.Hour); err != nil {
		fail(err)
	}
	if free, _ := f.store.FreeBytes(ctx); free > 1<<20 {
		f.store.Vacuum(ctx)
	}
}

func (f *fleet) size() int64 {
	n, _ := f.store.Size(context.Background())
	return n
}

// liveOnly is the size of the same database holding nothing but the live
// state: everything archived, dead seats pruned, compacted.
func (f *fleet) liveOnly(path string) int64 {
	ctx := context.Background()
	if err := f.store.Backup(ctx, path); err != nil {
		fail(err)
	}
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Mode: sqlitestore.ModeSnapshot})
	if err != nil {
		fail(err)
	}
	defer st.Close()
	svc := licensing.New(licensing.Config{Store: st, Actor: "simulation", Now: f.clk.now})
	if _, err := svc.Maintain(ctx, st.Archive(), 0); err != nil {
		fail(err)
	}
	st.Vacuum(ctx)
	n, _ := st.Size(ctx)
	return n
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "simulate-year:", err)
	os.Exit(1)
}
