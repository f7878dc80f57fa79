package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/ratelimit"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// startServer serves the API over real HTTP on loopback and returns its base URL.
func startServer(t *testing.T, f *apitest.Fixture, keys licensekey.PublicKeys, logs io.Writer) string {
	t.Helper()
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", PublicKeys: keys, TrustUnprovenKeys: keys == nil})
	api := httpapi.New(svc, slog.New(slog.NewJSONHandler(logs, nil)), f.Signer(t, svc))
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- api.ListenAndServe(ctx, "127.0.0.1:0", nil, func(a net.Addr) { addr <- a }) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("graceful shutdown: %v", err)
		}
		store.Close()
	})
	return base
}

func httpCaller(base string) apitest.Caller {
	return func(t *testing.T, c apitest.Call) apitest.Reply {
		req, err := http.NewRequest(c.Method, base+c.Path, strings.NewReader(c.Body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.Header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return apitest.Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}
}

func TestAPIOverRealHTTP(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	keys, err := licensekey.ParsePublicKeys(f.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	base := startServer(t, f, keys, &logs)
	apitest.Run(t, f, httpCaller(base), "127.0.0.1")

	resp, err := http.Get(base + contract.PathHealth)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	// One JSON access line per request, with request id and outcome; never a key.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"request_id":"`) {
			t.Fatalf("log line is not structured: %s", line)
		}
		if strings.Contains(line, "CAIO-v1-CUST-001-") || strings.Contains(line, apitest.Secret) {
			t.Fatalf("log line leaks a key or the secret: %s", line)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"request"`); n < 30 {
		t.Fatalf("%d access log lines, want one per request", n)
	}
}

// The server verifies with the database's public keys when none is pinned
// and it was told to trust them (serve does so, with a warning).
func TestServerWithoutConfiguredPublicKey(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	base := startServer(t, f, nil, io.Discard)
	r := httpCaller(base)(t, apitest.Call{Method: "POST", Path: contract.PathValidate, Body: `{"license_key":"` + f.Keys["roomy"] + `"}`})
	if r.Status != 200 {
		t.Fatalf("validate: %d %s", r.Status, r.Body)
	}
}

// busyStore stands in front of a real store and reports it busy, as SQLite
// or S3 do when contention outlasts the retries.
type busyStore struct{ licensing.Store }

func (busyStore) Update(context.Context, func(licensing.Tx) error) error {
	return licensing.Errorf(licensing.CodeBusy, "database is busy: retry shortly")
}

func TestBusyStoreAnswers503WithRetryAfter(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logs bytes.Buffer
	api := httpapi.New(licensing.New(licensing.Config{Store: busyStore{store}}), slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	resp := api.Serve(context.Background(), httpapi.Request{Method: "POST", Path: contract.PathActivate, Header: http.Header{"X-Caio-Instance-Id": {"i-1"}},
		Body: []byte(`{"license_key":"` + f.Keys["roomy"] + `"}`), RequestID: "req-1"})
	if resp.Status != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(resp.Body), `"code":"BUSY"`) {
		t.Fatalf("got %d %v %s", resp.Status, resp.Header, resp.Body)
	}
}

func TestStatusForEveryCode(t *testing.T) {
	want := map[licensing.Code]int{
		licensing.CodeValid: 200, contract.CodeDeactivated: 200,
		licensing.CodeBadRequest: 400, licensing.CodeInstanceIDRequired: 400,
		licensing.CodeInvalidKey: 403, licensing.CodeExpired: 403, licensing.CodeSuspended: 403, licensing.CodeRevoked: 403,
		licensing.CodeNotFound: 404, contract.CodeUnknownRoute: 404, contract.CodeMethodNotAllowed: 405,
		licensing.CodeTooManyInstances: 409, contract.CodeBodyTooLarge: 413, licensing.CodeBusy: 503, licensing.CodeUnknownOutcome: 503,
		licensing.CodeInternal: 500, licensing.CodeDBInvalid: 500,
	}
	for code, status := range want {
		if got := httpapi.StatusFor(code); got != status {
			t.Errorf("%s: %d, want %d", code, got, status)
		}
	}
}

// A request in flight when the server is told to stop still gets its answer.
func TestGracefulShutdownFinishesRequests(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	api := httpapi.New(licensing.New(licensing.Config{Store: store, TrustUnprovenKeys: true}), slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- api.ListenAndServe(ctx, "127.0.0.1:0", nil, func(a net.Addr) { addr <- a }) }()
	base := "http://" + (<-addr).String()
	// A slow client: the body arrives after shutdown has begun.
	pr, pw := io.Pipe()
	result := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+contract.PathValidate, "application/json", pr)
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	pw.Write([]byte(`{"license_key":"`))
	time.Sleep(100 * time.Millisecond)
	cancel()
	time.Sleep(100 * time.Millisecond)
	pw.Write([]byte(f.Keys["roomy"] + `"}`))
	pw.Close()
	if status := <-result; status != 200 {
		t.Fatalf("in-flight request got %d", status)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Invalid UTF-8 is refused, not silently replaced by U+FFFD (which would
// store an instance id other than the one sent), in the body or the header.
func TestInvalidUTF8IsRefused(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	call := httpCaller(startServer(t, f, keys, io.Discard))
	before := f.EventCount(t)
	for name, c := range map[string]apitest.Call{
		"body":   {Method: "POST", Path: contract.PathActivate, Body: `{"license_key":"` + f.Keys["roomy"] + `","instance_id":"host` + "\xff" + `name"}`},
		"header": {Method: "POST", Path: contract.PathActivate, Header: map[string]string{contract.HeaderInstanceID: "host\xffname"}, Body: `{"license_key":"` + f.Keys["roomy"] + `"}`},
	} {
		r := call(t, c)
		if r.Status != 400 || !strings.Contains(string(r.Body), `"BAD_REQUEST"`) {
			t.Errorf("%s: %d %s, want 400 BAD_REQUEST", name, r.Status, r.Body)
		}
	}
	if f.EventCount(t) != before {
		t.Error("a refused call wrote an event")
	}
}

func TestMain(m *testing.M) {
	secretboxtest.CheapKDF()
	os.Exit(m.Run())
}

// serve's rate limits: per source address and per license key, 429
// RATE_LIMITED with Retry-After, nothing written; the churn limit answers
// 429 TOO_MANY_ACTIVATIONS the same way.
func TestRateAndChurnLimits(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", PublicKeys: keys})
	api := httpapi.New(svc, slog.New(slog.DiscardHandler), f.Signer(t, svc))
	api.SetLimits(httpapi.Limits{PerAddress: ratelimit.New(0.001, 15, 100), PerKey: ratelimit.New(0.001, 21, 100)})
	call := func(addr, key, instance string) httpapi.Response {
		return api.Serve(context.Background(), httpapi.Request{Method: "POST", Path: contract.PathActivate, SourceIP: addr,
			Header: http.Header{"X-Caio-Instance-Id": {instance}}, Body: []byte(`{"license_key":"` + key + `"}`)})
	}
	// The roomy license (50 seats) has a churn limit of 100; two-seats has 10.
	for i := range 10 {
		addr := fmt.Sprintf("203.0.113.%d", 10+i)
		if r := call(addr, f.Keys["two-seats"], fmt.Sprintf("c-%d", i)); r.Status != 200 && r.Status != 409 {
			t.Fatalf("activation %d: %d %s", i, r.Status, r.Body)
		}
		api.Serve(context.Background(), httpapi.Request{Method: "POST", Path: contract.PathDeactivate, SourceIP: addr,
			Header: http.Header{"X-Caio-Instance-Id": {fmt.Sprintf("c-%d", i)}}, Body: []byte(`{"license_key":"` + f.Keys["two-seats"] + `"}`)})
		// The instance's deactivation keeps the seat until its lease ends;
		// the operator frees it, so that the next fresh id needs a new seat.
		if _, err := svc.Deactivate(context.Background(), licensing.SeatRequest{Key: f.Keys["two-seats"], InstanceID: fmt.Sprintf("c-%d", i), Immediate: true}); err != nil {
			t.Fatal(err)
		}
	}
	before := f.EventCount(t)
	r := call("203.0.113.2", f.Keys["two-seats"], "c-new")
	if r.Status != 429 || !strings.Contains(string(r.Body), `"TOO_MANY_ACTIVATIONS"`) || r.Header.Get("Retry-After") == "" {
		t.Fatalf("churn limit: %d %v %s", r.Status, r.Header, r.Body)
	}
	// Per key: the two-seats key has used its 21 (10 activations, 10 deactivations, the refusal).
	r = call("203.0.113.3", f.Keys["two-seats"], "c-new")
	if r.Status != 429 || !strings.Contains(string(r.Body), `"RATE_LIMITED"`) || r.Header.Get("Retry-After") == "" {
		t.Fatalf("per key: %d %s", r.Status, r.Body)
	}
	// Per address: 15 calls from one address, then refused; another address goes on.
	n := 0
	for ; n < 40; n++ {
		if r := call("198.51.100.7", f.Keys["roomy"], "r-1"); r.Status == 429 {
			if !strings.Contains(string(r.Body), "address") {
				t.Fatalf("refused for the wrong reason: %s", r.Body)
			}
			break
		}
	}
	if n != 15 {
		t.Fatalf("the address was refused after %d calls, want 15", n)
	}
	if r := call("198.51.100.8", f.Keys["roomy"], "r-2"); r.Status != 200 {
		t.Fatalf("another address: %d %s", r.Status, r.Body)
	}
	// Accepted: r-1 fifteen times (created, then refreshed) and r-2; the
	// refusals wrote nothing.
	if got := f.EventCount(t); got != before+16 {
		t.Fatalf("%d new events, want 16: refused calls wrote some", got-before)
	}
}
