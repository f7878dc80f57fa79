package licensing_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

const secret = "PFPrFT24bkwTgqtOujfJ6ZkpcJWjE/QQGw+YIEPSADg=" // strong: a new signing key needs one

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	path  string
	store *sqlitestore.Store
	clock *clock
	svc   *licensing.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, path := newBareEnv(t)
	e := &env{t: t, path: path, store: store, clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	e.svc = e.service(secret)
	if _, err := e.svc.AddCustomer(context.Background(), "CUST-001", "Acme Corp", "ops@acme.test"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) service(secret string) *licensing.Service {
	return licensing.New(licensing.Config{Store: e.store, Actor: "test", Secret: secret, Now: e.clock.now})
}

func (e *env) generate(mutate func(*licensing.GenerateRequest)) licensing.Issued {
	e.t.Helper()
	r := licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365,
		Features: []string{"analytics", "audit"}, MaxInstances: 2, MaxServices: 100, MaxRequestsPerDay: 10000}
	if mutate != nil {
		mutate(&r)
	}
	is, err := e.svc.Generate(context.Background(), r)
	if err != nil {
		e.t.Fatal(err)
	}
	return is
}

func (e *env) activate(key, instance string) error {
	_, err := e.svc.Activate(context.Background(), licensing.SeatRequest{Key: key, InstanceID: instance, IPAddress: "203.0.113.10"})
	return err
}

func (e *env) eventCount() int {
	evs, err := e.svc.Events(context.Background(), licensing.EventFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

func wantCode(t *testing.T, err error, code licensing.Code) {
	t.Helper()
	if licensing.ErrorCode(err) != code {
		t.Fatalf("got [%s] %v, want %s", licensing.ErrorCode(err), err, code)
	}
}

func TestGenerateCarriesClaimsAndVerifies(t *testing.T) {
	e := newEnv(t)
	is := e.generate(nil)
	c := is.Claims
	if c.CustomerID != "CUST-001" || c.Tier != "standard" || c.MaxInstances != 2 || strings.Join(c.Features, ",") != "analytics,audit" {
		t.Fatalf("claims %+v", c)
	}
	if want := e.clock.now().Add(365 * 24 * time.Hour); !c.ExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", c.ExpiresAt, want)
	}
	// With the secret, the database's public key is proven and verifies.
	got, err := e.service(secret).VerifyKey(context.Background(), is.Key)
	if err != nil || got.LicenseID != c.LicenseID {
		t.Fatalf("VerifyKey: %+v, %v", got, err)
	}
	// Without the secret or a pinned key, the database's word is not enough.
	if _, err := e.service("").VerifyKey(context.Background(), is.Key); licensing.ErrorCode(err) != licensing.CodePublicKeyRequired {
		t.Fatalf("VerifyKey with neither secret nor pinned key: %v, want PUBLIC_KEY_REQUIRED", err)
	}
	// And so does one that has only the public key and no database.
	pub, err := e.svc.PublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := licensekey.ParsePublicKeys(licensekey.FormatPublicKey(pub.PublicKey))
	offline := licensing.New(licensing.Config{PublicKeys: keys})
	if _, err := offline.VerifyKey(context.Background(), is.Key); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRejectsBadInputAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	before := e.eventCount()
	cases := map[string]struct {
		mutate func(*licensing.GenerateRequest)
		code   licensing.Code
	}{
		"unknown customer":      {func(r *licensing.GenerateRequest) { r.CustomerID = "CUST-404" }, licensing.CodeNotFound},
		"bad customer id":       {func(r *licensing.GenerateRequest) { r.CustomerID = "CUST 001" }, licensing.CodeBadRequest},
		"empty tier":            {func(r *licensing.GenerateRequest) { r.Tier = "" }, licensing.CodeBadRequest},
		"tier with quote":       {func(r *licensing.GenerateRequest) { r.Tier = `gold"` }, licensing.CodeBadRequest},
		"zero days":             {func(r *licensing.GenerateRequest) { r.ExpiresDays = 0 }, licensing.CodeBadRequest},
		"negative days":         {func(r *licensing.GenerateRequest) { r.ExpiresDays = -5 }, licensing.CodeBadRequest},
		"zero instances":        {func(r *licensing.GenerateRequest) { r.MaxInstances = 0 }, licensing.CodeBadRequest},
		"negative services":     {func(r *licensing.GenerateRequest) { r.MaxServices = -1 }, licensing.CodeBadRequest},
		"huge requests":         {func(r *licensing.GenerateRequest) { r.MaxRequestsPerDay = 1 << 40 }, licensing.CodeBadRequest},
		"feature with space":    {func(r *licensing.GenerateRequest) { r.Features = []string{"a b"} }, licensing.CodeBadRequest},
		"recipient with CRLF":   {func(r *licensing.GenerateRequest) { r.Recipient = "a@b.test\r\nBcc: x@y.test" }, licensing.CodeBadRequest},
		"recipient not address": {func(r *licensing.GenerateRequest) { r.Recipient = "not-an-email" }, licensing.CodeBadRequest},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1}
			c.mutate(&r)
			_, err := e.svc.Generate(context.Background(), r)
			wantCode(t, err, c.code)
		})
	}
	if lics, _ := e.svc.Licenses(context.Background(), "", ""); len(lics) != 0 || e.eventCount() != before {
		t.Fatalf("rejected requests wrote %d licenses and %d events", len(lics), e.eventCount()-before)
	}
}

func TestSecrets(t *testing.T) {
	e := newEnv(t)
	e.generate(nil)
	r := licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1}
	_, err := e.service("").Generate(context.Background(), r)
	wantCode(t, err, licensing.CodeSecretRequired)
	_, err = e.service("a different secret entirely").Generate(context.Background(), r)
	wantCode(t, err, licensing.CodeSecretMismatch)
	_, err = e.service("a different secret entirely").Export(context.Background())
	wantCode(t, err, licensing.CodeSecretMismatch)
	_, err = e.service("").Export(context.Background())
	wantCode(t, err, licensing.CodeSecretRequired)
}

// A leaked database file holds no key and no secret in plaintext.
func TestLeakedDatabaseHoldsNoKeys(t *testing.T) {
	e := newEnv(t)
	is := e.generate(nil)
	if err := e.activate(is.Key, "i-1"); err != nil {
		t.Fatal(err)
	}
	e.store.Close()
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(e.path + suffix)
		raw = append(raw, b...)
	}
	if len(raw) == 0 {
		t.Fatal("database file is empty")
	}
	body := is.Key[strings.LastIndexByte(is.Key, '-')+1:]
	for what, needle := range map[string]string{"license key": is.Key, "key body": body[:40], "secret": secret} {
		if bytes.Contains(raw, []byte(needle)) {
			t.Errorf("the database file contains the %s in plaintext", what)
		}
	}
}

func TestExportReturnsLatestKeys(t *testing.T) {
	e := newEnv(t)
	a, b := e.generate(nil), e.generate(func(r *licensing.GenerateRequest) { r.Tier = "enterprise" })
	rows, err := e.svc.Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Key != a.Key || rows[1].Key != b.Key {
		t.Fatalf("export %+v", rows)
	}
}

func TestSeatsAreLimitedAndReused(t *testing.T) {
	e := newEnv(t)
	key := e.generate(nil).Key // max 2 instances
	steps := []struct {
		op, instance string
		code         licensing.Code
		seats        int
	}{
		{"activate", "i-1", "", 1},
		{"activate", "i-2", "", 2},
		{"activate", "i-1", "", 2}, // refresh takes no second seat
		{"activate", "i-3", licensing.CodeTooManyInstances, 2},
		// The instance's own deactivation: its lease is still out there,
		// so its seat stays taken until the lease ends...
		{"deactivate", "i-1", "", 2},
		{"activate", "i-3", licensing.CodeTooManyInstances, 2},
		// ...and is its own to take back.
		{"activate", "i-1", "", 2},
		// The operator's frees it at once.
		{"release", "i-1", "", 1},
		{"activate", "i-3", "", 2},
		{"activate", "i-1", licensing.CodeTooManyInstances, 2},
		{"deactivate", "i-404", licensing.CodeNotFound, 2},
		// A seat given back frees itself when its lease ends.
		{"deactivate", "i-3", "", 2},
		{"wait 73h", "", "", 0},
		{"activate", "i-1", "", 1},
	}
	for i, s := range steps {
		var err error
		switch s.op {
		case "activate":
			err = e.activate(key, s.instance)
		case "wait 73h":
			e.clock.advance(73 * time.Hour)
		default:
			_, err = e.svc.Deactivate(context.Background(), licensing.SeatRequest{Key: key, InstanceID: s.instance, Immediate: s.op == "release"})
		}
		if licensing.ErrorCode(err) != s.code {
			t.Fatalf("step %d %s %s: got [%s] %v, want %q", i+1, s.op, s.instance, licensing.ErrorCode(err), err, s.code)
		}
		lics, _ := e.svc.Licenses(context.Background(), "", "")
		if lics[0].ActiveInstances != s.seats {
			t.Fatalf("step %d: %d seats in use, want %d", i+1, lics[0].ActiveInstances, s.seats)
		}
	}
	acts, err := e.svc.Activations(context.Background(), key)
	if err != nil || len(acts) != 3 {
		t.Fatalf("activations %+v %v", acts, err)
	}
	for _, a := range acts {
		if a.IPAddress != "203.0.113.10" || a.FirstSeen.IsZero() {
			t.Fatalf("activation not fully recorded: %+v", a)
		}
	}
}

func TestActivateRejects(t *testing.T) {
	e := newEnv(t)
	key := e.generate(nil).Key
	other := newEnv(t).generate(nil).Key
	tampered := key[:len(key)-5] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, key[len(key)-5:len(key)-4]) + key[len(key)-4:]
	cases := map[string]struct {
		key, instance, ip string
		code              licensing.Code
	}{
		"tampered key":         {tampered, "i-1", "", licensing.CodeInvalidKey},
		"garbage":              {"hello", "i-1", "", licensing.CodeInvalidKey},
		"empty key":            {"", "i-1", "", licensing.CodeBadRequest},
		"another server's key": {other, "i-1", "", licensing.CodeInvalidKey},
		"no instance id":       {key, "", "", licensing.CodeInstanceIDRequired},
		"instance id with CR":  {key, "i\r1", "", licensing.CodeBadRequest},
		"instance id too long": {key, strings.Repeat("i", licensing.MaxInstanceIDLen+1), "", licensing.CodeBadRequest},
		"bad ip":               {key, "i-1", "999.1.1.1", licensing.CodeBadRequest},
	}
	before := e.eventCount()
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.Activate(context.Background(), licensing.SeatRequest{Key: c.key, InstanceID: c.instance, IPAddress: c.ip})
			wantCode(t, err, c.code)
		})
	}
	if acts, _ := e.svc.Activations(context.Background(), ""); len(acts) != 0 || e.eventCount() != before {
		t.Fatal("rejected activations wrote something")
	}
}

func TestStatusLifecycle(t *testing.T) {
	e := newEnv(t)
	is := e.generate(nil)
	ctx := context.Background()
	if _, err := e.svc.SetStatus(ctx, is.Key, licensing.StatusSuspended, "unpaid"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.activate(is.Key, "i-1"), licensing.CodeSuspended)
	if _, err := e.svc.SetStatus(ctx, is.Claims.LicenseID, licensing.StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.activate(is.Key, "i-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetStatus(ctx, is.Key, licensing.StatusRevoked, "fraud"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.activate(is.Key, "i-1"), licensing.CodeRevoked)
	_, err := e.svc.SetStatus(ctx, is.Key, licensing.StatusActive, "")
	wantCode(t, err, licensing.CodeRevoked)
	_, err = e.svc.Renew(ctx, is.Key, 30)
	wantCode(t, err, licensing.CodeRevoked)
	_, err = e.svc.SetStatus(ctx, is.Key, licensing.StatusSuspended, "line one\nline two")
	wantCode(t, err, licensing.CodeBadRequest)
	// Seats can still be released.
	if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: "i-1"}); err != nil {
		t.Fatal(err)
	}
	evs, _ := e.svc.Events(ctx, licensing.EventFilter{LicenseID: is.Claims.LicenseID})
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	want := "license.created license.suspended license.reinstated activation.created license.revoked activation.deactivated"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("events %v, want %s", kinds, want)
	}
}

func TestExpiryAndRenewal(t *testing.T) {
	e := newEnv(t)
	is := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 10 })
	if err := e.activate(is.Key, "i-1"); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(11 * 24 * time.Hour)
	wantCode(t, e.activate(is.Key, "i-1"), licensing.CodeExpired)
	st, _ := e.svc.Stats(context.Background(), 30)
	if st.Expired != 1 || st.Active != 0 {
		t.Fatalf("stats after expiry %+v", st)
	}
	renewed, err := e.svc.Renew(context.Background(), is.Key, 30)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Key == is.Key || renewed.Claims.LicenseID != is.Claims.LicenseID {
		t.Fatal("renewal must give a new key for the same license")
	}
	if want := e.clock.now().Add(30 * 24 * time.Hour); !renewed.Claims.ExpiresAt.Equal(want) {
		t.Fatalf("lapsed license renewed to %v, want now+30d %v", renewed.Claims.ExpiresAt, want)
	}
	// Both keys work online; the seat carried over.
	for _, k := range []string{is.Key, renewed.Key} {
		if err := e.activate(k, "i-1"); err != nil {
			t.Fatal(err)
		}
	}
	lics, _ := e.svc.Licenses(context.Background(), "", licensing.StatusActive)
	if len(lics) != 1 || lics[0].ActiveInstances != 1 {
		t.Fatalf("after renewal %+v", lics)
	}
}

func TestValidateIsAHeartbeatThatWritesAtMostHourly(t *testing.T) {
	e := newEnv(t)
	key := e.generate(nil).Key
	ctx := context.Background()
	if err := e.activate(key, "i-1"); err != nil {
		t.Fatal(err)
	}
	seen := func() time.Time {
		acts, _ := e.svc.Activations(ctx, key)
		return acts[0].LastSeen
	}
	first := seen()
	e.clock.advance(59 * time.Minute)
	res, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	if err != nil || res.Changed || !seen().Equal(first) {
		t.Fatalf("validate within the hour wrote: changed=%v err=%v", res.Changed, err)
	}
	e.clock.advance(2 * time.Minute)
	res, err = e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"})
	if err != nil || !res.Changed || !seen().Equal(e.clock.now()) {
		t.Fatalf("validate after the hour: changed=%v err=%v seen=%v", res.Changed, err, seen())
	}
	// Validation without an instance answers for the key and writes nothing.
	if res, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key}); err != nil || res.Changed || res.Activation != nil {
		t.Fatalf("validate without an instance: %v changed=%v", err, res.Changed)
	}
	// An instance without a seat, never seen or deactivated, is refused:
	// validate never vouches for an instance without a lease.
	if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"}); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"never-activated", "i-1"} {
		if res, err := e.svc.Validate(ctx, licensing.SeatRequest{Key: key, InstanceID: inst}); licensing.ErrorCode(err) != licensing.CodeNoSeat || res.Changed {
			t.Fatalf("validate %q: %v changed=%v, want NO_SEAT", inst, err, res.Changed)
		}
	}
}

func TestStatsAndReminders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 5; r.Recipient = "buyer@acme.test" })
	e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 20; r.Tier = "enterprise" })
	e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 100 })
	gone := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 1 })
	susp := e.generate(func(r *licensing.GenerateRequest) { r.ExpiresDays = 3 })
	rev := e.generate(nil)
	e.svc.SetStatus(ctx, susp.Key, licensing.StatusSuspended, "")
	e.svc.SetStatus(ctx, rev.Key, licensing.StatusRevoked, "")
	e.activate(gone.Key, "i-1")
	e.clock.advance(2 * 24 * time.Hour)

	st, err := e.svc.Stats(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	// The one activation's lease ended with its license (a lease never
	// outlives the license): its seat is counted apart, as expired.
	want := licensing.Stats{Total: 6, Active: 3, Expired: 1, ExpiringSoon: 2, ExpiringWithinDays: 30, Suspended: 1, Revoked: 1, Customers: 1,
		ActiveInstances: 0, Seats: licensing.SeatCounts{Expired: 1}}
	st.ByTier = nil
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}
	if st, _ := e.svc.Stats(ctx, 200); st.ExpiringSoon != 3 {
		t.Fatalf("expiring within 200 days: %d, want 3", st.ExpiringSoon)
	}
	rs, err := e.svc.RenewalReminders(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].DaysLeft != 3 || rs[0].Email != "buyer@acme.test" || rs[1].DaysLeft != 18 || rs[1].Email != "ops@acme.test" || rs[1].CustomerName != "Acme Corp" {
		t.Fatalf("reminders %+v", rs)
	}
	_, err = e.svc.Stats(ctx, 0)
	wantCode(t, err, licensing.CodeBadRequest)
}

func TestCustomers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cases := map[string]struct {
		id, name, email string
		code            licensing.Code
	}{
		"duplicate":       {"CUST-001", "Again", "", licensing.CodeAlreadyExists},
		"bad id":          {"cust/1", "X", "", licensing.CodeBadRequest},
		"empty name":      {"C2", "", "", licensing.CodeBadRequest},
		"name with LF":    {"C2", "A\nB", "", licensing.CodeBadRequest},
		"email with CRLF": {"C2", "X", "x@y.test\r\n", licensing.CodeBadRequest},
		"display name":    {"C2", "X", "X <x@y.test>", licensing.CodeBadRequest},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.AddCustomer(ctx, c.id, c.name, c.email)
			wantCode(t, err, c.code)
		})
	}
	newName := "Acme Corporation"
	if c, err := e.svc.UpdateCustomer(ctx, "CUST-001", licensing.CustomerUpdate{Name: &newName}); err != nil || c.Name != newName || c.Email != "ops@acme.test" {
		t.Fatalf("update: %+v %v", c, err)
	}
	_, err := e.svc.UpdateCustomer(ctx, "CUST-404", licensing.CustomerUpdate{Name: &newName})
	wantCode(t, err, licensing.CodeNotFound)
	cs, _ := e.svc.Customers(ctx)
	if len(cs) != 1 {
		t.Fatalf("customers %+v", cs)
	}
}

// Two stores on one file (two processes, in effect) racing for the seats
// of one license: exactly max instances win.
func TestSeatsUnderContentionOnOneFile(t *testing.T) {
	e := newEnv(t)
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 5 }).Key
	won := e.race(key, 20, "i", licensing.CodeTooManyInstances)
	acts, _ := e.svc.Activations(context.Background(), key)
	if won != 5 || len(acts) != 5 {
		t.Fatalf("%d activations succeeded and %d are stored; want exactly 5", won, len(acts))
	}
}

// race has two stores on one file (two processes, in effect) activate n
// new instances of key concurrently; refusals must have code refused. It
// returns how many activations won.
func (e *env) race(key string, n int, prefix string, refused licensing.Code) int {
	e.t.Helper()
	other, err := sqlitestore.Open(context.Background(), e.path, sqlitestore.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer other.Close()
	services := []*licensing.Service{e.svc, licensing.New(licensing.Config{Store: other, Actor: "test2", Secret: secret, Now: e.clock.now})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range n {
		wg.Go(func() {
			_, err := services[i%2].Activate(context.Background(), licensing.SeatRequest{Key: key, InstanceID: fmt.Sprintf("%s-%d", prefix, i)})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if licensing.ErrorCode(err) != refused {
				e.t.Errorf("activation %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	return won
}

func TestMain(m *testing.M) {
	secretboxtest.CheapKDF()
	if path := os.Getenv("CAIO_TEST_MAINTAIN_CHILD"); path != "" {
		now, _ := time.Parse(time.RFC3339, os.Getenv("CAIO_TEST_NOW"))
		maintainChild(path, os.Getenv("CAIO_TEST_KILL_AT"), now)
	}
	os.Exit(m.Run())
}

// Stats, computed with SQL aggregates, agree with the licenses read one by
// one: by effective status, tier, expiring soon, and seats.
func TestStatsAgreeWithTheRows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var later []string
	for i := range 24 {
		is := e.generate(func(r *licensing.GenerateRequest) {
			r.Tier = []string{"standard", "enterprise", "trial"}[i%3]
			r.ExpiresDays = []int{1, 10, 20, 45, 400}[i%5]
			r.MaxInstances = 3
			r.GraceDays = int64([]int{0, 0, 30, 7}[i%4]) // some of the expired are in grace
		})
		switch i % 6 {
		case 1:
			e.svc.SetStatus(ctx, is.License.ID, licensing.StatusSuspended, "test")
		case 2:
			e.svc.SetStatus(ctx, is.License.ID, licensing.StatusRevoked, "test")
		case 3:
			later = append(later, is.Key)
		}
	}
	e.clock.advance(15 * 24 * time.Hour) // some expire, some come within 30 days
	for i, key := range later {
		e.activate(key, fmt.Sprintf("i-%d", i)) // refused where expired
	}
	st, err := e.svc.Stats(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	views, _ := e.svc.Licenses(ctx, "", "")
	want := licensing.Stats{ByTier: map[string]licensing.TierStats{}}
	now := e.clock.now()
	for _, v := range views {
		want.Total++
		tier := want.ByTier[v.Tier]
		tier.Total++
		switch v.EffectiveStatus {
		case licensing.StatusActive:
			want.Active++
			tier.Active++
			if v.ExpiresAt.Before(now.Add(30 * 24 * time.Hour)) {
				want.ExpiringSoon++
			}
		case licensing.StatusGrace:
			want.InGrace++
		case licensing.StatusExpired:
			want.Expired++
		case licensing.StatusSuspended:
			want.Suspended++
		case licensing.StatusRevoked:
			want.Revoked++
		}
		want.ByTier[v.Tier] = tier
		want.ActiveInstances += v.ActiveInstances
	}
	if st.Total != want.Total || st.Active != want.Active || st.Expired != want.Expired || st.InGrace != want.InGrace || st.Suspended != want.Suspended ||
		st.Revoked != want.Revoked || st.ExpiringSoon != want.ExpiringSoon || st.ActiveInstances != want.ActiveInstances ||
		fmt.Sprint(st.ByTier) != fmt.Sprint(want.ByTier) || st.Customers != 1 {
		t.Fatalf("stats %+v\nrows  %+v", st, want)
	}
	if want.Expired == 0 || want.InGrace == 0 || want.ExpiringSoon == 0 || want.ActiveInstances == 0 {
		t.Fatalf("the data does not exercise every count: %+v", want)
	}
}

// Refusals are counted by day and code without a write of their own; the
// counts are recorded with the next seat write, once.
func TestRefusalsRideAlongWithTheNextWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 1 }).Key
	if err := e.activate(key, "i-1"); err != nil {
		t.Fatal(err)
	}
	events := e.eventCount()
	for i := range 3 {
		if err := e.activate(key, fmt.Sprintf("x-%d", i)); licensing.ErrorCode(err) != licensing.CodeTooManyInstances {
			t.Fatalf("activation past the limit: %v", err)
		}
	}
	e.svc.Validate(ctx, licensing.SeatRequest{Key: "CAIO-v1-forged"})
	if got, _ := e.svc.Refusals(ctx, time.Unix(0, 0)); len(got) != 0 || e.eventCount() != events {
		t.Fatalf("refusals wrote: %v, %d events (was %d)", got, e.eventCount(), events)
	}
	// The next write records them.
	if _, err := e.svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1", Immediate: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.activate(key, "i-2"); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Refusals(ctx, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[licensing.Code]int{}
	for _, r := range got {
		counts[r.Code] += r.Count
		if r.Day != e.clock.now().Format(time.DateOnly) {
			t.Fatalf("day %s", r.Day)
		}
	}
	if counts[licensing.CodeTooManyInstances] != 3 || counts[licensing.CodeInvalidKey] != 1 || len(counts) != 2 {
		t.Fatalf("recorded refusals %v, want 3 TOO_MANY_INSTANCES and 1 INVALID_KEY, each once", counts)
	}
}

// A term that keys do not carry, changed in the second the key was issued,
// signs the very same key: the update is made, not refused as a duplicate
// key (found when in-process CLI tests ran faster than a second).
func TestTermsOutsideTheKeyChangedInTheSameSecond(t *testing.T) {
	e := newEnv(t)
	is := e.generate(nil)
	for _, limit := range []int64{25, 30} {
		n := limit
		up, err := e.svc.UpdateTerms(context.Background(), is.License.ID, licensing.TermsChange{MaxActivationsPerDay: &n})
		if err != nil {
			t.Fatalf("max-activations-per-day %d in the same second: %v", limit, err)
		}
		if up.License.MaxActivationsPerDay != limit || up.Key != is.Key {
			t.Fatalf("limit %d, key changed %v; want %d and the same key", up.License.MaxActivationsPerDay, up.Key != is.Key, limit)
		}
	}
}
