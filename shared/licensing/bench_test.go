package licensing_test

import (
	"context"
	"fmt"
	"testing"

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

func BenchmarkTrackActivation10k(b *testing.B) {
	svc, _, key := apitest.LargeDB(b, b.TempDir(), 10000)
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
