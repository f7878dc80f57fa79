package sqlitestore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The seat rule is written twice: in Go (licensing.Activation: SeatEnd,
// Occupies, State), which the domain and the client-facing answers use,
// and in SQL, where the store counts seats for the seat limit
// (ActiveInstances, OverageInstances), for stats and the report
// (SeatCounts, SeatTotals, CustomerSeats). Here both judge the same seats,
// made at random (online and offline leases, given back or not, with and
// without a seat timeout, some with no lease at all), at random instants
// and at each boundary a seat has: they must agree on every count.
func TestSeatRulesAgree(t *testing.T) {
	s, _ := create(t)
	ctx := context.Background()
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(23, 2026))
	at := func(maxHours int) time.Time {
		return base.Add(time.Duration(rng.IntN(maxHours*3600)-maxHours*1800) * time.Second)
	}
	timeouts := map[string]time.Duration{"L-none": 0, "L-hour": time.Hour, "L-day": 24 * time.Hour}
	seats := map[string][]licensing.Activation{}
	var instants []time.Time
	err := s.Update(ctx, func(tx licensing.Tx) error {
		if err := tx.InsertCustomer(licensing.Customer{ID: "C1", Name: "One", CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		if err := tx.InsertSigningKey(licensing.SigningKey{KeyID: "K1", PublicKey: []byte("p"), SealedPrivateKey: []byte("s"), CreatedAt: base}); err != nil {
			return err
		}
		for id, timeout := range timeouts {
			err := tx.InsertLicense(licensing.License{ID: id, CustomerID: "C1", Tier: "t", MaxInstances: 5, MaxServices: 1, MaxRequestsPerDay: 1,
				Status: licensing.StatusActive, KeyID: "K1", IssuedAt: base.Add(-30 * 24 * time.Hour), ExpiresAt: base.Add(365 * 24 * time.Hour), LeaseSeconds: 3 * 24 * 3600, SeatTimeoutSeconds: int64(timeout / time.Second), OveragePercent: 50})
			if err != nil {
				return err
			}
			for i := range 80 {
				a := licensing.Activation{LicenseID: id, CustomerID: "C1", InstanceID: fmt.Sprintf("%s-%d", id, i), Kind: licensing.KindOnline,
					FirstSeen: base.Add(-96 * time.Hour), Overage: rng.IntN(3) == 0, SeatTimeout: timeout}
				if rng.IntN(4) == 0 {
					a.Kind = licensing.KindOffline
				}
				a.LastSeen = a.FirstSeen
				if rng.IntN(10) > 0 { // else a row from before leases: no lease
					issued := at(96)
					expires := issued.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
					a.LeaseIssuedAt, a.LeaseExpiresAt = &issued, &expires
					a.LastSeen = issued
					instants = append(instants, issued, expires, a.SeatEnd())
				}
				if rng.IntN(3) == 0 {
					// Given back: taken until the lease it was given ends, or
					// an old deactivation.
					d := at(96)
					if a.LeaseExpiresAt != nil && rng.IntN(2) == 0 {
						d = *a.LeaseExpiresAt
					}
					a.DeactivatedAt = &d
					instants = append(instants, d)
				}
				if err := tx.PutActivation(a); err != nil {
					return err
				}
				seats[id] = append(seats[id], a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each boundary, a second either side of it, and instants at random.
	var nows []time.Time
	for _, b := range instants {
		nows = append(nows, b, b.Add(-time.Second), b.Add(time.Second))
	}
	for range 200 {
		nows = append(nows, at(120))
	}
	for _, now := range nows {
		err := s.View(ctx, func(tx licensing.Tx) error {
			counts, err := tx.SeatCounts(now)
			if err != nil {
				return err
			}
			var total licensing.SeatCounts
			for id, timeout := range timeouts {
				var want licensing.SeatCounts
				for _, a := range seats[id] {
					switch a.State(now) {
					case licensing.SeatLive, licensing.SeatReleasing:
						want.Live++
					case licensing.SeatExpiredLease:
						want.Expired++
					case licensing.SeatDeactivated:
						want.Deactivated++
					}
					if a.Occupies(now) != (a.State(now) == licensing.SeatLive || a.State(now) == licensing.SeatReleasing) {
						t.Fatalf("%s at %s: Occupies and State disagree", a.InstanceID, now)
					}
					if a.Occupies(now) && a.Kind == licensing.KindOffline {
						want.Offline++
					}
					if a.OverageSeat(now) {
						want.Overage++
					}
				}
				active, err := tx.ActiveInstances(id, now, timeout)
				if err != nil {
					return err
				}
				over, err := tx.OverageInstances(id, now, timeout)
				if err != nil {
					return err
				}
				if active != want.Live || over != want.Overage || counts[id] != want {
					t.Fatalf("%s at %s: Go counts %+v; SQL: ActiveInstances %d, OverageInstances %d, SeatCounts %+v", id, now.Format(time.RFC3339), want, active, over, counts[id])
				}
				total.Live += want.Live
				total.Offline += want.Offline
				total.Expired += want.Expired
				total.Deactivated += want.Deactivated
				total.Overage += want.Overage
			}
			totals, err := tx.SeatTotals(now)
			if err != nil {
				return err
			}
			customers, err := tx.CustomerSeats(now)
			if err != nil {
				return err
			}
			if totals != total || len(customers) != 1 || customers[0].Used != total.Live {
				t.Fatalf("at %s: Go counts %+v; SeatTotals %+v, CustomerSeats %+v", now.Format(time.RFC3339), total, totals, customers)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d seats judged at %d instants", 3*80, len(nows))
}
