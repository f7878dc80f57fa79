package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
)

// The activation API through its handler, in-process, on 10,000 licenses.
func benchAPI(b *testing.B, path string, instance func(i int) string) {
	svc, _, key := apitest.LargeDB(b, b.TempDir(), 10000)
	api := httpapi.New(svc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	body := []byte(`{"license_key":"` + key + `"}`)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		resp := api.Serve(ctx, httpapi.Request{Method: "POST", Path: path, Body: body, SourceIP: "203.0.113.10",
			Header: http.Header{"X-Caio-Instance-Id": {instance(i)}}})
		if resp.Status != 200 {
			b.Fatalf("%d %s", resp.Status, resp.Body)
		}
	}
}

func BenchmarkAPIValidate10k(b *testing.B) {
	benchAPI(b, httpapi.PathValidate, func(int) string { return "instance-001" })
}

func BenchmarkAPIActivate10k(b *testing.B) {
	benchAPI(b, httpapi.PathActivate, func(i int) string { return fmt.Sprintf("instance-%d", i%1000) })
}
