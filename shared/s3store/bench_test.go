package s3store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

const benchSecret = "5N9S0m12Rf4VUmDXDUhi8AxBobutgYnxpVsDoAWLQeE=" // strong: a new signing key needs one

// seed fills st with rows activations and returns the key of a license
// with room for more, and the public keys to pin (as the activate function
// does).
func seed(b testing.TB, st licensing.Store, rows int) (string, licensekey.PublicKeys) {
	ctx := context.Background()
	svc := licensing.New(licensing.Config{Store: st, Actor: "bench", Secret: benchSecret})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme", ""); err != nil {
		b.Fatal(err)
	}
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365,
		MaxInstances: 1_000_000, MaxServices: 1, MaxRequestsPerDay: 1})
	if err != nil {
		b.Fatal(err)
	}
	// Spread over licenses of ten seats each, as real fleets are.
	now := time.Now().UTC().Truncate(time.Second)
	err = st.Update(ctx, func(tx licensing.Tx) error {
		lic := is.License
		for i := range rows {
			if i%10 == 0 {
				lic.ID = fmt.Sprintf("%032x", i/10+1)
				if err := tx.InsertLicense(lic); err != nil {
					return err
				}
			}
			a := licensing.Activation{LicenseID: lic.ID, InstanceID: fmt.Sprintf("seed-instance-%07d", i),
				IPAddress: "203.0.113.10", FirstSeen: now, LastSeen: now}
			if err := tx.PutActivation(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	pinned, err := svc.TrustedPublicKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return is.Key, pinned
}

func benchOps(b *testing.B, st licensing.Store, key string, pinned licensekey.PublicKeys, proxy *s3test.Proxy) {
	ctx := context.Background()
	svc := licensing.New(licensing.Config{Store: st, Actor: "bench", PublicKeys: pinned})
	if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "heartbeat"}); err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B) {
		if proxy == nil {
			return
		}
		n := float64(b.N)
		b.ReportMetric(float64(proxy.Requests.Load())/n, "s3-req/op")
		b.ReportMetric(float64(proxy.BytesUp.Load())/n, "up-B/op")
		b.ReportMetric(float64(proxy.BytesDown.Load())/n, "down-B/op")
	}
	b.Run("activate", func(b *testing.B) {
		if proxy != nil {
			proxy.Reset()
		}
		i := 0
		for b.Loop() {
			i++
			if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: fmt.Sprintf("bench-%d-%d", b.N, i)}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("validate", func(b *testing.B) {
		if proxy != nil {
			proxy.Reset()
		}
		for b.Loop() {
			if _, err := svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "heartbeat"}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// BenchmarkCost measures activate and validate in S3 mode (against
// gofakes3 on loopback, through a counting proxy) and on a local file, at
// growing numbers of activation rows; and the cold start on an empty cache.
func BenchmarkCost(b *testing.B) {
	for _, rows := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			srv := s3test.StartGofakes3(b)
			proxy := s3test.NewProxy(b, srv)
			for k, v := range proxy.Env("bench.db") {
				b.Setenv(k, v)
			}
			ctx := context.Background()
			st, err := s3store.Open(ctx, "s3://"+s3test.Bucket+"/bench.db", b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			key, pinned := seed(b, st, rows)
			size, _ := st.Size(ctx)
			b.Logf("rows=%d: database %d bytes", rows, size)

			b.Run("s3", func(b *testing.B) { benchOps(b, st, key, pinned, proxy) })

			// Latency without the counting proxy's extra hop: a warm store
			// talking to the server itself.
			b.Run("s3-direct", func(b *testing.B) {
				for k, v := range srv.Env("bench.db") {
					b.Setenv(k, v)
				}
				direct, err := s3store.Open(ctx, "s3://"+s3test.Bucket+"/bench.db", b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer direct.Close()
				benchOps(b, direct, key, pinned, nil)
			})

			b.Run("s3/cold-validate", func(b *testing.B) {
				proxy.Reset()
				for b.Loop() {
					cold, err := s3store.Open(ctx, "s3://"+s3test.Bucket+"/bench.db", b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					if _, err := licensing.New(licensing.Config{Store: cold, PublicKeys: pinned}).Validate(ctx, licensing.SeatRequest{Key: key}); err != nil {
						b.Fatal(err)
					}
					cold.Close()
				}
				n := float64(b.N)
				b.ReportMetric(float64(proxy.Requests.Load())/n, "s3-req/op")
				b.ReportMetric(float64(proxy.BytesDown.Load())/n, "down-B/op")
			})

			local, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "local.db"), sqlitestore.Options{Create: true})
			if err != nil {
				b.Fatal(err)
			}
			defer local.Close()
			localKey, localPinned := seed(b, local, rows)
			b.Run("local", func(b *testing.B) { benchOps(b, local, localKey, localPinned, nil) })
		})
	}
}

// BenchmarkContention measures the commit rate of one database (10,000
// activation rows, 2.8 MB) under writers in separate stores (as separate
// processes would be), each adding customers as fast as it can, on
// gofakes3 over loopback.
func BenchmarkContention(b *testing.B) {
	for _, writers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			srv := s3test.StartGofakes3(b)
			proxy := s3test.NewProxy(b, srv)
			for k, v := range proxy.Env("bench.db") {
				b.Setenv(k, v)
			}
			ctx := context.Background()
			stores := make([]*s3store.Store, writers)
			for i := range stores {
				st, err := s3store.Open(ctx, "s3://"+s3test.Bucket+"/bench.db", b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				stores[i] = st
			}
			if _, err := stores[0].Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			seed(b, stores[0], 10_000)
			for _, st := range stores {
				if _, err := licensing.New(licensing.Config{Store: st}).Customers(ctx); err != nil {
					b.Fatal(err)
				}
			}
			proxy.Reset()
			var next atomic.Int64
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w, st := range stores {
				svc := licensing.New(licensing.Config{Store: st, Actor: "bench"})
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := svc.AddCustomer(ctx, fmt.Sprintf("W%d-%d", w, next.Load()), "c", ""); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
			b.ReportMetric(float64(proxy.Puts.Load())/float64(b.N), "puts/commit")
		})
	}
}
