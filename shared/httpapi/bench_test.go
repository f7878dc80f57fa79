package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The activation API through its handler, in-process, on 10,000 licenses;
// signed (a response signature, and a lease on activate) or not, to
// measure what signing costs in the same run.
func benchAPI(b *testing.B, path string, signed bool, instance func(i int) string) {
	owner, store, key := apitest.LargeDB(b, b.TempDir(), 10000)
	// As serve and the activate function run: the public key pinned, no secret.
	pub, err := owner.PublicKey(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	pinned := licensekey.PublicKeys{}
	pinned.Add(pub.PublicKey)
	svc := licensing.New(licensing.Config{Store: store, Actor: "bench", PublicKeys: pinned})
	var signer *httpapi.Signer
	if signed {
		priv, cert, err := owner.CertifyServerKey(context.Background(), 30)
		if err != nil {
			b.Fatal(err)
		}
		signer = &httpapi.Signer{Key: priv, Certificate: cert.Certificate, NotAfter: cert.NotAfter}
	}
	api := httpapi.New(svc, slog.New(slog.NewJSONHandler(io.Discard, nil)), signer)
	body := []byte(`{"license_key":"` + key + `"}`)
	ctx := context.Background()
	// The instance validating holds its seat, as a CAIO instance does.
	if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: instance(0)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		resp := api.Serve(ctx, httpapi.Request{Method: "POST", Path: path, Body: body, SourceIP: "203.0.113.10",
			Header: http.Header{"X-Caio-Instance-Id": {instance(i)}, "X-Caio-Nonce": {"0123456789abcdef"}, "X-Caio-Signature-Version": {"2"}}})
		if resp.Status != 200 {
			b.Fatalf("%d %s", resp.Status, resp.Body)
		}
	}
}

func BenchmarkAPIValidate10k(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run(fmt.Sprintf("signed=%v", signed), func(b *testing.B) {
			benchAPI(b, contract.PathValidate, signed, func(int) string { return "instance-001" })
		})
	}
}

func BenchmarkAPIActivate10k(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run(fmt.Sprintf("signed=%v", signed), func(b *testing.B) {
			benchAPI(b, contract.PathActivate, signed, func(i int) string { return fmt.Sprintf("instance-%d", i%1000) })
		})
	}
}
