package licensing_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

func BenchmarkGenerateLicense10k(b *testing.B) {
	svc, _, _ := apitest.LargeDB(b, b.TempDir(), 10000)
	ctx := context.Background()
	r := licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365, Features: []string{"analytics", "audit"},
		MaxInstances: 5, MaxServices: 100, MaxRequestsPerDay: 10000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Generate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuMeter adds the process's CPU time (user and system, every goroutine:
// the garbage collector's too) per iteration to a benchmark's results, as
// cpu-ns/op: on a machine shared with other work the wall time per
// iteration swings with the others' disk and CPU use far more than this.
// Start it just before the loop and report just after it.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) cpuMeter { return cpuMeter{b, processCPU(b)} }

func (m cpuMeter) report() {
	if m.b.N > 0 {
		m.b.ReportMetric(float64(processCPU(m.b)-m.start)/float64(m.b.N), "cpu-ns/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTrackActivation10k is an activation as serve makes it: the
// public keys pinned, no secret; an instance renewing the seat it holds,
// among 1000 instances on the license. The 1000 take their seats before
// the timer starts: a run shorter than 1000 iterations (about a second)
// would otherwise time first activations alone (see
// BenchmarkTrackActivation10kFirst for those).
func BenchmarkTrackActivation10k(b *testing.B) {
	minting, store, key := apitest.LargeDB(b, b.TempDir(), 10000)
	ctx := context.Background()
	pinned, err := minting.TrustedPublicKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	svc := licensing.New(licensing.Config{Store: store, Actor: "bench", PublicKeys: pinned})
	for i := range 1000 {
		if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: fmt.Sprintf("i-%d", i), IPAddress: "203.0.113.10"}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		i++
		c, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: fmt.Sprintf("i-%d", i%1000), IPAddress: "203.0.113.10"})
		if err != nil {
			b.Fatal(err)
		}
		if !c.Renewed {
			b.Fatal("a renewal took a new seat")
		}
	}
	cpu.report()
}

// BenchmarkTrackActivation10kFirst is BenchmarkTrackActivation10k where
// every activation is an instance's first: a new instance id each time,
// so each one counts the seats taken, checks the churn limit, records a
// seat grant and inserts the row. Every 1000 seats the instances move to a
// fresh license (made with the timer stopped), so that the seats counted
// per activation stay about the renewal benchmark's 1000.
func BenchmarkTrackActivation10kFirst(b *testing.B) {
	minting, store, key := apitest.LargeDB(b, b.TempDir(), 10000)
	ctx := context.Background()
	pinned, err := minting.TrustedPublicKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	svc := licensing.New(licensing.Config{Store: store, Actor: "bench", PublicKeys: pinned})
	i := 0
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		i++
		if i%1000 == 0 {
			b.StopTimer()
			is, err := minting.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365,
				MaxInstances: 100000, MaxServices: 100, MaxRequestsPerDay: 10000})
			if err != nil {
				b.Fatal(err)
			}
			key = is.Key
			b.StartTimer()
		}
		c, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: fmt.Sprintf("first-%d", i), IPAddress: "203.0.113.10"})
		if err != nil {
			b.Fatal(err)
		}
		if c.Renewed {
			b.Fatal("a first activation was a renewal")
		}
	}
	cpu.report()
}

func BenchmarkStats10k(b *testing.B) {
	svc, _, _ := apitest.LargeDB(b, b.TempDir(), 10000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Stats(ctx, 30); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawCommit is the floor for BenchmarkTrackActivation10k: one
// prepared one-row INSERT per transaction on an SQLite file with the same
// durability (WAL, synchronous=FULL), through the same driver.
func BenchmarkRawCommit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=synchronous(full)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, instance TEXT, at TEXT)"); err != nil {
		b.Fatal(err)
	}
	ins, err := db.Prepare("INSERT INTO t (instance, at) VALUES (?, ?)")
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		i++
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Stmt(ins).Exec(fmt.Sprintf("i-%d", i), "2026-11-29T10:00:00Z"); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report()
}

// BenchmarkReport10k gathers the operator report (90 days) over 10,000
// licenses and 100,000 activations with events.
func BenchmarkReport10k(b *testing.B) {
	svc, store, _ := apitest.LargeDB(b, b.TempDir(), 10000)
	ctx := context.Background()
	now := time.Now().UTC()
	err := store.Update(ctx, func(tx licensing.Tx) error {
		for i := range 100_000 {
			lic := fmt.Sprintf("%032x", 1+i%9999)
			at := now.Add(-time.Duration(i%90) * 24 * time.Hour)
			exp := now.Add(time.Hour)
			if err := tx.PutActivation(licensing.Activation{LicenseID: lic, InstanceID: fmt.Sprintf("i-%d", i), FirstSeen: at, LastSeen: at,
				LeaseIssuedAt: &at, LeaseExpiresAt: &exp}); err != nil {
				return err
			}
			if err := tx.AppendEvent(licensing.Event{At: at, Kind: licensing.EventActivationCreated, Actor: "bench", LicenseID: lic}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Report(ctx, nil, 90); err != nil {
			b.Fatal(err)
		}
	}
}
