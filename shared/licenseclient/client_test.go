package licenseclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/ratelimit"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

func TestMain(m *testing.M) {
	secretboxtest.CheapKDF()
	os.Exit(m.Run())
}

// server is the real API on loopback over a fixture database.
type server struct {
	f   *apitest.Fixture
	svc *licensing.Service // with the secret, for offline leases
	api *httpapi.API
	url string
}

func startServer(t testing.TB) *server {
	t.Helper()
	return startServerAt(t, nil)
}

// startServerAt is startServer with the services on clk (nil: the real
// clock), so that a test can take a license to its expiry and past it.
func startServerAt(t testing.TB, clk *clock) *server {
	t.Helper()
	now := time.Now
	if clk != nil {
		now = clk.now
	}
	f := apitest.NewFixture(t, t.TempDir())
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", PublicKeys: keys, Now: now})
	api := httpapi.New(svc, slog.New(slog.DiscardHandler), f.Signer(t, svc))
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- api.ListenAndServe(ctx, "127.0.0.1:0", nil, func(a net.Addr) { addr <- a }) }()
	s := &server{f: f, api: api, url: "http://" + (<-addr).String(),
		svc: licensing.New(licensing.Config{Store: store, Actor: "test", Secret: apitest.Secret, Now: now})}
	t.Cleanup(func() { cancel(); <-done })
	return s
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newClient(t testing.TB, s *server, serverURL, stateDir string, clk *clock) *licenseclient.Client {
	t.Helper()
	keys, _ := licensekey.ParsePublicKeys(s.f.PublicKey)
	cfg := licenseclient.Config{ServerURL: serverURL, PublicKeys: keys, StateDir: stateDir, Timeout: 2 * time.Second, Retries: 1}
	if clk != nil {
		cfg.Now = clk.now
	}
	c, err := licenseclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func want(t *testing.T, what string, r licenseclient.Result, ok bool, code string) {
	t.Helper()
	if r.OK != ok || r.Code != code {
		t.Fatalf("%s: ok=%v %s (%s), want ok=%v %s", what, r.OK, r.Code, r.Detail, ok, code)
	}
}

func TestActivateCheckDeactivate(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	c := newClient(t, s, s.url, dir, clk)
	key := s.f.Keys["two-seats"]

	r := c.Activate(ctx, key, "node-1")
	want(t, "activate", r, true, "VALID")
	if r.Lease == nil || r.Claims == nil || r.Claims.CustomerID != "CUST-001" || r.FromLease {
		t.Fatalf("activate: %+v", r)
	}
	first := *r.Lease
	// The state is private.
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if info, err := os.Stat(files[0]); len(files) != 1 || err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("state files %v", files)
	}
	// Before renew-after the lease answers, without the server.
	r = c.Check(ctx, key, "node-1")
	want(t, "check", r, true, "VALID")
	if !r.FromLease {
		t.Fatal("check before renew-after asked the server")
	}
	// After it, the server renews (a new lease, or the same when the
	// server's own clock says it is not due yet).
	clk.set(first.RenewAfter.Add(time.Second))
	r = c.Check(ctx, key, "node-1")
	want(t, "check after renew-after", r, true, "VALID")
	if r.FromLease || r.Lease == nil {
		t.Fatalf("check after renew-after did not ask the server: %+v", r)
	}
	want(t, "deactivate", c.Deactivate(ctx, key, "node-1"), true, "DEACTIVATED")
	// node-1's seat stays taken until the lease it was given ends (a copy
	// of it would run until then): node-2 takes the other seat, node-3
	// finds none, and node-1 may take its own back.
	want(t, "activate node-2", c.Activate(ctx, key, "node-2"), true, "VALID")
	want(t, "activate node-3", c.Activate(ctx, key, "node-3"), false, "TOO_MANY_INSTANCES")
	want(t, "activate node-1 again", c.Activate(ctx, key, "node-1"), true, "VALID")
	// Signed refusals come through as the API's codes.
	want(t, "revoked", c.Activate(ctx, s.f.Keys["revoked"], "node-1"), false, "REVOKED")
	want(t, "unknown to the server", c.Activate(ctx, s.f.Keys["unknown"], "node-1"), false, "NOT_FOUND")
	// A key that does not verify never reaches the server.
	want(t, "tampered key", c.Activate(ctx, key[:len(key)-2]+"xx", "node-1"), false, "INVALID_KEY")
}

// hostile serves answers in front of (or instead of) the real server.
func hostile(t *testing.T, upstream string, rewrite func(resp *http.Response) error) string {
	t.Helper()
	u, _ := url.Parse(upstream)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = rewrite
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
}

// Each forgery is rejected as if the server were unreachable: no seat
// without a lease, and the cached lease carries on when there is one.
func TestForgedAnswersAreRejected(t *testing.T) {
	s := startServer(t)
	other := startServer(t) // another license key, another certified server key
	ctx := context.Background()
	key := s.f.Keys["roomy"]

	var mu sync.Mutex
	var recorded *http.Response
	var recordedBody []byte
	forgers := map[string]string{
		"an unsigned answer from a server of someone else's": func() string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"valid":true,"code":"VALID","detail":"license is valid"}`)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}(),
		"a replayed signed answer (old nonce)": hostile(t, s.url, func(resp *http.Response) error {
			mu.Lock()
			defer mu.Unlock()
			body, _ := io.ReadAll(resp.Body)
			if recorded == nil {
				recorded, recordedBody = resp, body
			}
			resp.Header = recorded.Header.Clone()
			resp.StatusCode = recorded.StatusCode
			setBody(resp, recordedBody)
			return nil
		}),
		"a certificate signed by another license key": other.url,
		"one byte of a signed body altered": hostile(t, s.url, func(resp *http.Response) error {
			body, _ := io.ReadAll(resp.Body)
			body = bytes.Replace(body, []byte(`"instance_id":"node-`), []byte(`"instance_id":"nodE-`), 1)
			setBody(resp, body)
			return nil
		}),
		"a signed answer to another route": func() string {
			// Activate goes to validate and validate to activate: each
			// signed answer comes back to a request for the other route.
			u, _ := url.Parse(s.url)
			proxy := httputil.NewSingleHostReverseProxy(u)
			direct := proxy.Director
			swap := map[string]string{contract.PathActivate: contract.PathValidate, contract.PathValidate: contract.PathActivate}
			proxy.Director = func(r *http.Request) { direct(r); r.URL.Path = swap[r.URL.Path] }
			srv := httptest.NewServer(proxy)
			t.Cleanup(srv.Close)
			return srv.URL
		}(),
		"a stripped signature": hostile(t, s.url, func(resp *http.Response) error {
			resp.Header.Del(contract.HeaderSignature)
			return nil
		}),
	}
	// Prime the replay with one genuine answer.
	newClient(t, s, forgers["a replayed signed answer (old nonce)"], t.TempDir(), nil).Activate(ctx, key, "node-0")

	for name, forger := range forgers {
		t.Run(name, func(t *testing.T) {
			clk := &clock{t: time.Now()}
			dir := t.TempDir()
			c := newClient(t, s, forger, dir, clk)
			r := c.Activate(ctx, key, "node-1")
			if r.OK || r.Code != "BAD_SIGNATURE" {
				t.Fatalf("activate through the forger: ok=%v %s (%s)", r.OK, r.Code, r.Detail)
			}
			// With a genuine lease, the forger is the same as no server.
			genuine := newClient(t, s, s.url, dir, clk).Activate(ctx, key, "node-1")
			want(t, "genuine activate", genuine, true, "VALID")
			clk.set(genuine.Lease.RenewAfter.Add(time.Minute))
			r = c.Check(ctx, key, "node-1")
			want(t, "check through the forger", r, true, "VALID")
			if !r.FromLease || !strings.Contains(r.Detail, "running on the lease") {
				t.Fatalf("the forged answer was taken: %+v", r)
			}
			clk.set(genuine.Lease.ExpiresAt.Add(time.Second))
			want(t, "after the lease", c.Check(ctx, key, "node-1"), false, "LEASE_EXPIRED")
		})
	}
}

// A server outage: the lease carries the instance until it expires.
func TestOutageRunsOnTheLease(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	dir := t.TempDir()
	r := newClient(t, s, s.url, dir, clk).Activate(ctx, s.f.Keys["roomy"], "node-1")
	want(t, "activate", r, true, "VALID")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newClient(t, s, dead, dir, clk)
	clk.set(r.Lease.RenewAfter.Add(time.Hour))
	got := c.Check(ctx, s.f.Keys["roomy"], "node-1")
	want(t, "check during the outage", got, true, "VALID")
	if !got.FromLease {
		t.Fatal("not from the lease")
	}
	clk.set(r.Lease.ExpiresAt)
	want(t, "check after the lease", c.Check(ctx, s.f.Keys["roomy"], "node-1"), false, "LEASE_EXPIRED")
	// Never activated, the outage is just that.
	want(t, "no lease", c.Check(ctx, s.f.Keys["roomy"], "node-2"), false, "SERVER_UNREACHABLE")

	// An error page from something in the way (unsigned 503 or 429), and a
	// signed "busy" or "rate limited", are outages too: the lease carries
	// on and is kept.
	clk, dir = &clock{t: time.Now()}, t.TempDir()
	r = newClient(t, s, s.url, dir, clk).Activate(ctx, s.f.Keys["roomy"], "node-3")
	want(t, "activate node-3", r, true, "VALID")
	clk.set(r.Lease.RenewAfter.Add(time.Hour))
	for _, page := range []struct {
		status int
		body   string
	}{{503, "Service Unavailable"}, {429, "Too Many Requests"}} {
		url := hostile(t, s.url, func(resp *http.Response) error {
			resp.StatusCode = page.status
			setBody(resp, []byte(page.body))
			return nil
		})
		got := newClient(t, s, url, dir, clk).Check(ctx, s.f.Keys["roomy"], "node-3")
		if !got.OK || !got.FromLease || !strings.Contains(got.Detail, fmt.Sprint(page.status)) {
			t.Fatalf("an unsigned %d: %+v", page.status, got)
		}
	}
	limited := startServer(t)
	limited.api.SetLimits(httpapi.Limits{PerKey: ratelimit.New(0.001, 1, 10)})
	lc := newClient(t, limited, limited.url, t.TempDir(), nil)
	want(t, "activate before the limit", lc.Activate(ctx, limited.f.Keys["roomy"], "node-1"), true, "VALID")
	got = lc.Activate(ctx, limited.f.Keys["roomy"], "node-1")
	want(t, "a signed RATE_LIMITED", got, true, "VALID")
	if !got.FromLease || !strings.Contains(got.Detail, "could not answer now") {
		t.Fatalf("rate limited: %+v", got)
	}
}

// A tampered state file is discarded, never trusted.
func TestTamperedStateIsDiscarded(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	c := newClient(t, s, s.url, dir, clk)
	want(t, "activate", c.Activate(ctx, s.f.Keys["roomy"], "node-1"), true, "VALID")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	raw, _ := os.ReadFile(files[0])
	var st map[string]any
	json.Unmarshal(raw, &st)

	// A lease extended by hand: the signature no longer covers it.
	tok := st["lease"].(string)
	st["lease"] = tok[:40] + string(rune(tok[40]^1)) + tok[41:]
	b, _ := json.Marshal(st)
	os.WriteFile(files[0], b, 0o600)
	dead := newClient(t, s, "http://127.0.0.1:1", dir, clk)
	want(t, "check on a tampered lease, server down", dead.Check(ctx, s.f.Keys["roomy"], "node-1"), false, "SERVER_UNREACHABLE")
	// Garbage.
	os.WriteFile(files[0], []byte("{not json"), 0o600)
	want(t, "check on garbage, server up", c.Check(ctx, s.f.Keys["roomy"], "node-1"), true, "VALID")
}

// Offline leases verify with the public key alone.
func TestOfflineLease(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	key := s.f.Keys["roomy"]
	ol, err := s.svc.IssueOfflineLease(ctx, licensing.SeatRequest{Key: key, InstanceID: "plant-7"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := json.Marshal(map[string]string{"format": "caio-offline-lease-v1", "lease": ol.Token})
	clk := &clock{t: time.Now()}
	c := newClient(t, s, "", t.TempDir(), clk)
	r := c.CheckOffline(key, "plant-7", file)
	want(t, "offline", r, true, "VALID")
	if r.Lease == nil || r.Lease.Kind.String() != "offline" {
		t.Fatalf("lease %+v", r.Lease)
	}
	want(t, "other instance", c.CheckOffline(key, "plant-8", file), false, "BAD_SIGNATURE")
	want(t, "other key", c.CheckOffline(s.f.Keys["two-seats"], "plant-7", file), false, "BAD_SIGNATURE")
	for _, at := range []int{5, 30, len(ol.Token) / 2, len(ol.Token) - 2} {
		tok := []byte(ol.Token)
		tok[at] = "AB"[btoi(tok[at] == 'A')]
		bad, _ := json.Marshal(map[string]string{"format": "caio-offline-lease-v1", "lease": string(tok)})
		want(t, fmt.Sprintf("one character changed at %d", at), c.CheckOffline(key, "plant-7", bad), false, "BAD_SIGNATURE")
	}
	// A clock rolled back below a time already seen.
	clk.set(time.Now().Add(-2 * time.Hour))
	want(t, "rolled-back clock", c.CheckOffline(key, "plant-7", file), false, "CLOCK_ROLLBACK")
	clk.set(ol.Lease.ExpiresAt.Add(time.Second))
	want(t, "after expiry", c.CheckOffline(key, "plant-7", file), false, "LEASE_EXPIRED")
	// It holds a seat like any activation, shown as offline.
	acts, _ := s.svc.Activations(ctx, key)
	found := false
	for _, a := range acts {
		found = found || (a.InstanceID == "plant-7" && a.Kind == licensing.KindOffline)
	}
	if !found {
		t.Fatalf("offline activation not recorded: %+v", acts)
	}
}

// A rolled-back clock with the server reachable: the server's signed time
// settles it.
func TestRollbackIsSettledByTheServer(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	c := newClient(t, s, s.url, dir, clk)
	want(t, "activate", c.Activate(ctx, s.f.Keys["roomy"], "node-1"), true, "VALID")
	clk.set(time.Now().Add(-3 * time.Hour))
	want(t, "check with a rolled-back clock", c.Check(ctx, s.f.Keys["roomy"], "node-1"), true, "VALID")
	offline := newClient(t, s, "http://127.0.0.1:1", dir, clk)
	want(t, "and no server", offline.Check(ctx, s.f.Keys["roomy"], "node-1"), false, "CLOCK_ROLLBACK")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
