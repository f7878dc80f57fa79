package report_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/report"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// metricRE reads a headline card: data-metric="name">value<.
var metricRE = regexp.MustCompile(`data-metric="([a-z_]+)">([0-9]+)<`)

// The report's grace and overage, built through the domain with a fake
// clock and rendered at each boundary: a license on the last second of its
// grace is listed in grace (and counted so), from the grace's end it is
// expired and gone from the list; the last overage seat is counted and
// listed per license, and the seat after it is refused and changes nothing.
func TestReportGraceAndOverageBoundaries(t *testing.T) {
	secretboxtest.CheapKDF()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	svc, _ := apitest.Service(t, t.TempDir(), clock.now)
	generate := func(r licensing.GenerateRequest) licensing.Issued {
		t.Helper()
		r.CustomerID, r.Tier, r.MaxServices, r.MaxRequestsPerDay = "CUST-001", "standard", 10, 1000
		is, err := svc.Generate(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return is
	}
	graced := generate(licensing.GenerateRequest{ExpiresDays: 1, GraceDays: 2, MaxInstances: 1})
	over := generate(licensing.GenerateRequest{ExpiresDays: 365, MaxInstances: 2, OveragePercent: 50})
	graceEnd := graced.License.GraceEndsAt()

	clock.set(graceEnd.Add(-time.Hour))
	for i, want := range []licensing.Code{licensing.CodeValid, licensing.CodeValid, licensing.CodeOverage} {
		c, err := svc.Activate(ctx, licensing.SeatRequest{Key: over.Key, InstanceID: "node-" + string(rune('1'+i))})
		if err != nil || c.Outcome(c.At) != want {
			t.Fatalf("seat %d: %v %v, want %s", i+1, c.Outcome(c.At), err, want)
		}
	}
	// The seat after the last overage seat: refused, nothing counted.
	_, err := svc.Activate(ctx, licensing.SeatRequest{Key: over.Key, InstanceID: "node-4"})
	if licensing.ErrorCode(err) != licensing.CodeTooManyInstances {
		t.Fatalf("the seat after the allowance: %v, want TOO_MANY_INSTANCES", err)
	}

	render := func(at time.Time) (licensing.ReportData, string, map[string]string) {
		t.Helper()
		clock.set(at)
		d, err := svc.Report(ctx, nil, 30)
		if err != nil {
			t.Fatal(err)
		}
		var page bytes.Buffer
		if err := report.Render(&page, d, report.Meta{Database: "test", Version: "test"}); err != nil {
			t.Fatal(err)
		}
		metrics := map[string]string{}
		for _, m := range metricRE.FindAllStringSubmatch(page.String(), -1) {
			metrics[m[1]] = m[2]
		}
		return d, page.String(), metrics
	}
	overRow := `data-license="` + over.License.ID + `" data-live="3" data-max="2" data-overage="1" data-cap="3"`
	graceRow := `data-license="` + graced.License.ID + `" data-grace-ends="` + graceEnd.Format(time.RFC3339) + `"`

	// The last second of the grace.
	d, page, metrics := render(graceEnd.Add(-time.Second))
	if st := d.Stats; st.InGrace != 1 || st.Expired != 0 || st.Seats.Overage != 1 || st.Seats.Live != 3 {
		t.Fatalf("the grace's last second: stats %+v", st)
	}
	if metrics["in_grace"] != "1" || metrics["expired"] != "0" || metrics["overage_seats"] != "1" {
		t.Fatalf("the grace's last second: cards %v", metrics)
	}
	if len(d.InGrace) != 1 || !strings.Contains(page, graceRow) || !strings.Contains(page, "<td class=\"warn\">"+graceEnd.Format("2006-01-02 15:04")+"</td>") {
		t.Fatalf("the license in grace is not listed with its grace's end (%s): %+v", graceEnd, d.InGrace)
	}
	if len(d.Overage) != 1 || !strings.Contains(page, overRow) || !strings.Contains(page, "50% (up to 3 seats)") {
		t.Fatalf("the overage seat is not listed: %+v", d.Overage)
	}

	// The grace's end: expired, out of the list; the overage unchanged.
	d, page, metrics = render(graceEnd)
	if st := d.Stats; st.InGrace != 0 || st.Expired != 1 || st.Seats.Overage != 1 {
		t.Fatalf("the grace's end: stats %+v", st)
	}
	if metrics["in_grace"] != "0" || metrics["expired"] != "1" || len(d.InGrace) != 0 ||
		strings.Contains(page, graced.License.ID) || !strings.Contains(page, "No license is in grace.") {
		t.Fatalf("the grace's end: cards %v, listed %+v", metrics, d.InGrace)
	}
	if !strings.Contains(page, overRow) {
		t.Fatal("the overage seat is gone from the report")
	}
}
