package licensing_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// benchDB returns a service on a database of n licenses and the key of one of them.
func benchDB(b *testing.B, n int) (*licensing.Service, string) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	svc := licensing.New(licensing.Config{Store: store, Actor: "bench", Secret: secret})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme", ""); err != nil {
		b.Fatal(err)
	}
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365,
		MaxInstances: 100000, MaxServices: 100, MaxRequestsPerDay: 10000})
	if err != nil {
		b.Fatal(err)
	}
	// The rest are bulk-inserted in one transaction: minting each would
	// dominate the set-up time without changing what is measured.
	now := time.Now().UTC().Truncate(time.Second)
	err = store.Update(ctx, func(tx licensing.Tx) error {
		for i := 1; i < n; i++ {
			id := make([]byte, 16)
			rand.Read(id)
			lic := is.License
			lic.ID = hex.EncodeToString(id)
			lic.ExpiresAt = now.Add(time.Duration(i%400) * 24 * time.Hour)
			if err := tx.InsertLicense(lic); err != nil {
				return err
			}
			digest := make([]byte, 32)
			rand.Read(digest)
			if err := tx.InsertLicenseKey(licensing.LicenseKey{Digest: hex.EncodeToString(digest), LicenseID: lic.ID, Sealed: digest, IssuedAt: now, ExpiresAt: lic.ExpiresAt}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc, is.Key
}

func BenchmarkGenerateLicense10k(b *testing.B) {
	svc, _ := benchDB(b, 10000)
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

func BenchmarkTrackActivation10k(b *testing.B) {
	svc, key := benchDB(b, 10000)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: fmt.Sprintf("i-%d", i%1000), IPAddress: "203.0.113.10"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate10k(b *testing.B) {
	svc, key := benchDB(b, 10000)
	ctx := context.Background()
	if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStats10k(b *testing.B) {
	svc, _ := benchDB(b, 10000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Stats(ctx, 30); err != nil {
			b.Fatal(err)
		}
	}
}
