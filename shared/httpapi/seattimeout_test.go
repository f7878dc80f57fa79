package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Under a seat timeout shorter than half the lease, the answer's lease
// (its info and its signed token alike) says to renew at half the
// timeout, and still runs for the whole lease.
func TestLeaseRenewsAtHalfTheSeatTimeout(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", PublicKeys: keys, Secret: apitest.Secret})
	is, err := svc.Generate(context.Background(), licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30,
		MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1, LeaseSeconds: 3600, SeatTimeoutSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	signer := f.Signer(t, svc)
	api := httpapi.New(svc, slog.New(slog.DiscardHandler), signer)
	r := api.Serve(context.Background(), httpapi.Request{Method: "POST", Path: contract.PathActivate, SourceIP: "203.0.113.9",
		Header: http.Header{"X-Caio-Instance-Id": {"node-a"}}, Body: []byte(`{"license_key":"` + is.Key + `"}`)})
	var body contract.ResponseBody[json.RawMessage, json.RawMessage]
	if err := json.Unmarshal(r.Body, &body); err != nil || r.Status != 200 || body.LeaseInfo == nil {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	info := body.LeaseInfo
	if info.RenewAfter.Sub(info.IssuedAt) != 5*time.Minute || info.ExpiresAt.Sub(info.IssuedAt) != time.Hour {
		t.Fatalf("lease %+v: want renew after 5 minutes, expiry after an hour", info)
	}
	l, err := lease.Verify(body.Lease, signer.Key.Public().(ed25519.PublicKey))
	if err != nil || !l.RenewAfter.Equal(info.RenewAfter) || !l.ExpiresAt.Equal(info.ExpiresAt) {
		t.Fatalf("signed lease %+v (%v), info %+v", l, err, info)
	}
}
