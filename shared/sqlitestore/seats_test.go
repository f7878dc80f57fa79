package sqlitestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// A seat grant prunes its license's grants at or before the prune time,
// and only those, whether or not SeatGrants read the license's grants
// earlier in the same unit of work (AddSeatGrant then skips a prune that
// would delete nothing).
func TestAddSeatGrantPrunes(t *testing.T) {
	s, _ := create(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	dayAgo := now.Add(-24 * time.Hour)
	update := func(fn func(tx licensing.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx licensing.Tx) error {
		if err := tx.InsertCustomer(licensing.Customer{ID: "C1", Name: "One", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if err := tx.InsertSigningKey(licensing.SigningKey{KeyID: "K1", PublicKey: []byte("p"), SealedPrivateKey: []byte("s"), CreatedAt: now}); err != nil {
			return err
		}
		for _, id := range []string{"L1", "L2"} {
			err := tx.InsertLicense(licensing.License{ID: id, CustomerID: "C1", Tier: "t", MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1,
				Status: licensing.StatusActive, KeyID: "K1", LeaseSeconds: licensing.DefaultLeaseSeconds})
			if err != nil {
				return err
			}
		}
		return nil
	})
	// The grants of all time of each license.
	all := func(want map[string]int) {
		t.Helper()
		err := s.View(ctx, func(tx licensing.Tx) error {
			for id, n := range want {
				got, _, err := tx.SeatGrants(id, time.Time{})
				if err != nil {
					return err
				}
				if got != n {
					t.Errorf("license %s has %d seat grants, want %d", id, got, n)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add := func(tx licensing.Tx, id string, at time.Time) error { return tx.AddSeatGrant(id, at, time.Time{}) }
	update(func(tx licensing.Tx) error {
		for _, g := range []struct {
			id string
			at time.Time
		}{{"L1", now.Add(-30 * time.Hour)}, {"L1", now.Add(-2 * time.Hour)}, {"L2", now.Add(-30 * time.Hour)}} {
			if err := add(tx, g.id, g.at); err != nil {
				return err
			}
		}
		return nil
	})
	all(map[string]int{"L1": 2, "L2": 1})

	// Read first, as a first activation does: the old grant goes, the
	// other license's stays.
	update(func(tx licensing.Tx) error {
		n, oldest, err := tx.SeatGrants("L1", dayAgo)
		if err != nil {
			return err
		}
		if n != 1 || !oldest.Equal(now.Add(-2*time.Hour)) {
			t.Errorf("SeatGrants = %d, %v; want 1, %v", n, oldest, now.Add(-2*time.Hour))
		}
		return tx.AddSeatGrant("L1", now, dayAgo)
	})
	all(map[string]int{"L1": 2, "L2": 1})

	// Nothing left to prune: the grant is added all the same.
	update(func(tx licensing.Tx) error {
		if _, _, err := tx.SeatGrants("L1", dayAgo); err != nil {
			return err
		}
		return tx.AddSeatGrant("L1", now, dayAgo)
	})
	all(map[string]int{"L1": 3, "L2": 1})

	// What was read of one license says nothing of another's.
	update(func(tx licensing.Tx) error {
		if _, _, err := tx.SeatGrants("L1", dayAgo); err != nil {
			return err
		}
		return tx.AddSeatGrant("L2", now, dayAgo)
	})
	all(map[string]int{"L1": 3, "L2": 1})

	// A grant added after the read (here an old one) is pruned by the
	// next: what was read is forgotten once a grant is added.
	update(func(tx licensing.Tx) error {
		if _, _, err := tx.SeatGrants("L2", dayAgo); err != nil {
			return err
		}
		if err := add(tx, "L2", now.Add(-40*time.Hour)); err != nil {
			return err
		}
		return tx.AddSeatGrant("L2", now, dayAgo)
	})
	all(map[string]int{"L1": 3, "L2": 2})
}
