package delivery_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// fakeClock is the service's clock, set by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// A license in grace is reminded once a day of its grace, through a real
// SMTP server: a reminder distinct from the one before the expiry, that
// says when the license expired and when it stops working. A second run
// on the same day sends nothing (the claim), the next day sends again, and
// a license past its grace is not reminded.
func TestGraceRemindersOncePerDay(t *testing.T) {
	e := newEnv(t)
	mp := mailtest.StartMailpit(t, false)
	sender := mailer(t, mp.Env())
	store, err := sqlitestore.Open(context.Background(), e.path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret, Now: clock.now})
	is, err := svc.Generate(context.Background(), licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 2,
		MaxInstances: 5, MaxServices: 100, MaxRequestsPerDay: 10000, GraceDays: 3})
	if err != nil {
		t.Fatal(err)
	}
	expires, graceEnd := is.License.ExpiresAt, is.License.GraceEndsAt()
	thresholds := []int{30, 7, 1}
	run := func(at time.Time) (delivery.Counts, []delivery.ReminderOutcome) {
		t.Helper()
		clock.set(at)
		c, out, err := delivery.New(svc, sender, quiet()).Reminders(context.Background(), thresholds)
		if err != nil {
			t.Fatal(err)
		}
		return c, out
	}
	latest := func(want int) mailtest.Mail {
		t.Helper()
		msgs := mp.Messages(t)
		if len(msgs) != want {
			t.Fatalf("%d messages received, want %d", len(msgs), want)
		}
		return msgs[len(msgs)-1] // oldest first: the latest is last
	}

	// The last day before the expiry: the ordinary reminder.
	if c, _ := run(expires.Add(-time.Hour)); c.Sent != 1 {
		t.Fatalf("before the expiry: %+v", c)
	}
	if m := latest(1); !strings.HasPrefix(m.Subject, "Your CAIO license expires on 2026-03-03") || strings.Contains(m.Text, "grace") {
		t.Fatalf("before the expiry: %q\n%s", m.Subject, m.Text)
	}

	// The first day of grace: the grace reminder, claimed for that day.
	c, out := run(expires.Add(time.Hour))
	if c.Sent != 1 || len(out) != 1 || !out[0].InGrace || out[0].ThresholdDays != -1 || !out[0].GraceEndsAt.Equal(graceEnd) || out[0].DaysLeft != 3 {
		t.Fatalf("grace day 1: %+v %+v", c, out)
	}
	m := latest(2)
	if m.Subject != "Your CAIO license expired on 2026-03-03 — in grace until 2026-03-06 12:00 UTC" {
		t.Fatalf("grace subject %q", m.Subject)
	}
	for _, want := range []string{"expired on 2026-03-03", "keeps working in its grace", "period until 2026-03-06 12:00 UTC, and stops working then: 3 days left"} {
		if !strings.Contains(m.Text, want) {
			t.Fatalf("the grace reminder does not say %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(m.HTML, "until <b>2026-03-06 12:00 UTC</b>") {
		t.Fatalf("grace reminder HTML:\n%s", m.HTML)
	}
	// Later the same day of grace: already sent.
	if c, _ := run(expires.Add(23 * time.Hour)); c.Found != 0 || c.Sent != 0 {
		t.Fatalf("grace day 1 again: %+v", c)
	}
	latest(2)
	// The next day, and the last second of the grace: one each.
	if c, out := run(expires.Add(25 * time.Hour)); c.Sent != 1 || out[0].ThresholdDays != -2 {
		t.Fatalf("grace day 2: %+v %+v", c, out)
	}
	if c, out := run(graceEnd.Add(-time.Second)); c.Sent != 1 || out[0].ThresholdDays != -3 || out[0].DaysLeft != 1 {
		t.Fatalf("the grace's last second: %+v %+v", c, out)
	}
	if m := latest(4); !strings.Contains(m.Text, "1 day left") {
		t.Fatalf("the last day's reminder:\n%s", m.Text)
	}
	// The grace's end: expired, nothing due.
	if c, _ := run(graceEnd); c.Found != 0 {
		t.Fatalf("after the grace: %+v", c)
	}
	ds, err := svc.Deliveries(context.Background(), is.License.ID)
	if err != nil || len(ds) != 4 || ds[len(ds)-1].ThresholdDays != -3 {
		t.Fatalf("deliveries %+v %v", ds, err)
	}
}
