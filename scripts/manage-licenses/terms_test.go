package main_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Grace and overage: set on generate-license, distribute-license and
// update-license; shown by the commands that print a license, listed in
// JSON and exported; refused outside their bounds with the flag named.
func TestGraceAndOverageFlags(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.ok("add-customer", "CUST-001", "Acme", "--email", "ops@example.test")

	r := c.ok("generate-license", "CUST-001", "standard", "--max-instances", "5", "--grace-days", "7", "--overage-percent", "20")
	for _, want := range []string{"grace ", "7 days (until ", "overage ", "20% (up to 6 seats)"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("generate-license does not show %q:\n%s", want, r.stdout)
		}
	}
	key := r.lastLine()
	if r := c.ok("show-license", key); !strings.Contains(r.stdout, "7 days (until ") || !strings.Contains(r.stdout, "20% (up to 6 seats)") {
		t.Fatalf("show-license:\n%s", r.stdout)
	}
	plain := c.ok("generate-license", "CUST-001", "standard")
	if strings.Count(plain.stdout, "none") != 2 {
		t.Fatalf("without the flags, grace and overage are none:\n%s", plain.stdout)
	}
	c.ok("distribute-license", "CUST-001", "it@acme.example", "standard", "--grace-days", "90", "--overage-percent", "100")

	var lics []map[string]any
	json.Unmarshal([]byte(c.ok("--json", "list-licenses").stdout), &lics)
	if len(lics) != 3 || lics[0]["grace_days"] != float64(7) || lics[0]["overage_percent"] != float64(20) ||
		lics[1]["grace_days"] != float64(0) || lics[2]["grace_days"] != float64(90) || lics[2]["overage_percent"] != float64(100) {
		t.Fatalf("list-licenses --json: %v", lics)
	}
	json.Unmarshal([]byte(c.ok("export-licenses", "--format", "json").stdout), &lics)
	if len(lics) != 3 || lics[0]["grace_days"] != float64(7) || lics[0]["overage_percent"] != float64(20) {
		t.Fatalf("export-licenses --format json: %v", lics)
	}
	rows, err := csv.NewReader(strings.NewReader(c.ok("export-licenses", "--format", "csv").stdout)).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("export-licenses --format csv: %v %v", rows, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if rows[1][col["grace_days"]] != "7" || rows[1][col["overage_percent"]] != "20" || rows[3][col["grace_days"]] != "90" || col["license_key"] != 18 || col["grace_days"] != 16 {
		t.Fatalf("export-licenses --format csv: header %v, first row %v", rows[0], rows[1])
	}

	// Out of bounds: a usage error naming the flag, nothing issued.
	for _, args := range [][]string{
		{"--grace-days", "91"}, {"--grace-days", "-1"}, {"--grace-days", "x"},
		{"--overage-percent", "101"}, {"--overage-percent", "-1"}, {"--overage-percent", "2.5"},
	} {
		c.fails(2, "BAD_REQUEST", args[0], append([]string{"generate-license", "CUST-001", "standard"}, args...)...)
		c.fails(2, "BAD_REQUEST", args[0], append([]string{"distribute-license", "CUST-001", "it@acme.example", "standard"}, args...)...)
		c.fails(2, "BAD_REQUEST", args[0], append([]string{"update-license", key}, args...)...)
	}
	if r := c.fails(2, "BAD_REQUEST", "--overage-percent", "update-license", key); !strings.Contains(r.stderr, "--grace-days") {
		t.Fatalf("nothing to change does not list --grace-days: %s", r.stderr)
	}
	json.Unmarshal([]byte(c.ok("--json", "list-licenses").stdout), &lics)
	if len(lics) != 3 {
		t.Fatalf("a refused command issued a license: %d", len(lics))
	}

	// update-license changes one term and keeps the other; the same terms
	// again change nothing.
	var upd struct {
		License licensing.License `json:"license"`
	}
	json.Unmarshal([]byte(c.ok("--json", "update-license", key, "--grace-days", "14").stdout), &upd)
	if upd.License.GraceDays != 14 || upd.License.OveragePercent != 20 {
		t.Fatalf("update-license --grace-days 14: %+v", upd.License)
	}
	json.Unmarshal([]byte(c.ok("--json", "update-license", key, "--overage-percent", "0").stdout), &upd)
	if upd.License.GraceDays != 14 || upd.License.OveragePercent != 0 {
		t.Fatalf("update-license --overage-percent 0: %+v", upd.License)
	}
	if r := c.ok("update-license", key, "--grace-days", "14"); !strings.Contains(r.stdout, "nothing changed") {
		t.Fatalf("the same grace again:\n%s", r.stdout)
	}
	if r := c.ok("show-license", key); !strings.Contains(r.stdout, "14 days (until ") || !strings.Contains(r.stdout, "overage ") {
		t.Fatalf("show-license after the update:\n%s", r.stdout)
	}
	if r := c.ok("--json", "list-events", "--kind", "license.updated").stdout; !strings.Contains(r, "grace 14 days") || !strings.Contains(r, "overage 0%") {
		t.Fatalf("the changes are not in the event log:\n%s", r)
	}
	for cmd, want := range map[string]string{"list-licenses": "grace (expired, within its grace days)", "generate-license": "--overage-percent",
		"distribute-license": "--grace-days", "update-license": "[--grace-days N] [--overage-percent P]"} {
		if r := c.ok(cmd, "--help"); !strings.Contains(r.stdout, want) {
			t.Errorf("%s --help does not say %q", cmd, want)
		}
	}
}

// backdated generates licenses in the CLI's database as if at when: the
// CLI has no clock of its own to set, so a license in grace (or past it)
// now is made by issuing it in the past, through the domain.
func backdated(t *testing.T, db string, when time.Time, reqs ...licensing.GenerateRequest) []licensing.Issued {
	t.Helper()
	store, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: testSecret, Now: func() time.Time { return when }})
	var out []licensing.Issued
	for _, r := range reqs {
		is, err := svc.Generate(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, is)
	}
	return out
}

// Stats, the listings, reminders and the report (in Chromium) at the
// boundaries: a license in the last hour of its grace against one an hour
// past it; the last overage seat against the one after it, refused.
func TestGraceAndOverageInStatsAndReport(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	c := newCLI(t)
	db, _ := c.setup() // one active license, 2 seats, no overage
	c.ok("add-customer", "CUST-002", "Globex", "--email", "it@globex.test")
	now := time.Now().UTC().Truncate(time.Second)
	req := licensing.GenerateRequest{CustomerID: "CUST-002", Tier: "enterprise", ExpiresDays: 1, GraceDays: 5,
		MaxInstances: 1, MaxServices: 10, MaxRequestsPerDay: 1000}
	lastDay := backdated(t, db, now.Add(-6*24*time.Hour+time.Hour), req)[0]
	past := backdated(t, db, now.Add(-6*24*time.Hour-time.Hour), req)[0]
	if end := lastDay.License.GraceEndsAt(); !end.Equal(now.Add(time.Hour)) {
		t.Fatalf("the last day's grace ends at %v", end)
	}

	over := c.ok("generate-license", "CUST-002", "enterprise", "--max-instances", "2", "--overage-percent", "50").lastLine()
	for i, want := range []string{"", "", "OVERAGE: this seat is above the license's 2 max instances, within its 50% overage allowance"} {
		r := c.ok("track-activation", over, "--instance-id", "g-"+string(rune('1'+i)))
		if (want == "") == strings.Contains(r.stdout, "OVERAGE") || !strings.Contains(r.stdout, want) {
			t.Fatalf("seat %d:\n%s", i+1, r.stdout)
		}
	}
	c.fails(1, "TOO_MANY_INSTANCES", "3 instance seats (2 and 50% overage)", "track-activation", over, "--instance-id", "g-4")

	var st licensing.Stats
	if err := json.Unmarshal([]byte(c.ok("--json", "stats").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.InGrace != 1 || st.Expired != 1 || st.Active != 2 || st.Seats.Overage != 1 || st.Seats.Live != 3 {
		t.Fatalf("stats --json: %+v", st)
	}
	text := c.ok("stats").stdout
	for _, want := range []string{"in grace ", "overage seats "} {
		line := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), want) {
				line = l
			}
		}
		if !strings.HasSuffix(strings.TrimSpace(line), " 1") {
			t.Fatalf("stats does not say %s 1:\n%s", want, text)
		}
	}
	// show-license says why 3 seats are in use of 2, and which one is above.
	overShown := c.ok("show-license", over).stdout
	if !strings.Contains(overShown, "3 of 2 in use, 1 of them an overage seat") {
		t.Fatalf("show-license's seats line:\n%s", overShown)
	}
	for _, l := range strings.Split(overShown, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[0], "g-") && (f[0] == "g-3") != strings.Contains(l, "(overage)") {
			t.Fatalf("show-license's seat %s:\n%s", f[0], overShown)
		}
	}
	// The listing in grace, and what each license says of itself.
	var lics []licensing.LicenseView
	json.Unmarshal([]byte(c.ok("--json", "list-licenses", "--status", "grace").stdout), &lics)
	if len(lics) != 1 || lics[0].ID != lastDay.License.ID || lics[0].EffectiveStatus != licensing.StatusGrace {
		t.Fatalf("list-licenses --status grace: %+v", lics)
	}
	if r := c.ok("show-license", lastDay.License.ID).stdout; !strings.Contains(r, "grace") || !strings.Contains(r, "5 days (until "+lastDay.License.GraceEndsAt().Format(time.RFC3339)+")") {
		t.Fatalf("show-license in grace:\n%s", r)
	}
	var shown struct {
		EffectiveStatus licensing.Status `json:"effective_status"`
	}
	json.Unmarshal([]byte(c.ok("--json", "show-license", past.License.ID).stdout), &shown)
	if shown.EffectiveStatus != licensing.StatusExpired {
		t.Fatalf("an hour past its grace: %s, want expired", shown.EffectiveStatus)
	}
	var rs []licensing.Reminder
	json.Unmarshal([]byte(c.ok("--json", "renewal-reminders").stdout), &rs)
	if len(rs) != 1 || rs[0].LicenseID != lastDay.License.ID || !rs[0].InGrace || rs[0].DaysLeft != 1 {
		t.Fatalf("renewal-reminders: %+v", rs)
	}

	// The reminder in grace, by a real SMTP server: the one license in
	// grace, on its fifth day of grace, once.
	mp := mailtest.StartMailpit(t, false)
	for k, v := range mp.Env() {
		c.env[k] = v
	}
	if r := c.ok("renewal-reminders", "--send").stdout; !strings.Contains(r, "grace day 5") || !strings.Contains(r, "1 found, 1 sent") {
		t.Fatalf("renewal-reminders --send:\n%s", r)
	}
	if r := c.ok("renewal-reminders", "--send").stdout; !strings.Contains(r, "0 found, 0 sent") {
		t.Fatalf("renewal-reminders --send, again the same day:\n%s", r)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 1 || msgs[0].To[0] != "it@globex.test" ||
		msgs[0].Subject != "Your CAIO license expired on "+lastDay.License.ExpiresAt.Format(time.DateOnly)+" — in grace until "+lastDay.License.GraceEndsAt().Format("2006-01-02 15:04 UTC") {
		t.Fatalf("grace reminders received: %+v", msgs)
	}
	if r := c.ok("list-deliveries", "--license-key", lastDay.License.ID).stdout; !strings.Contains(r, "reminder (grace day 5)") {
		t.Fatalf("list-deliveries:\n%s", r)
	}

	out := filepath.Join(c.home, "report.html")
	c.ok("report", "--output", out, "--days", "30")
	ctx, problems := inChromium(t, browser, out, "grace-list")
	metrics, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll('[data-metric]')].map(e => [e.dataset.metric, e.textContent.trim()]))`))
	if err != nil {
		t.Fatal(err)
	}
	grace, err := chromedp.Run(ctx, chromedp.Evaluate[[]map[string]string](
		`[...document.querySelectorAll('#grace-list tr.grace')].map(r => ({license: r.dataset.license, ends: r.dataset.graceEnds, text: r.innerText}))`))
	if err != nil {
		t.Fatal(err)
	}
	overage, err := chromedp.Run(ctx, chromedp.Evaluate[[]map[string]string](
		`[...document.querySelectorAll('#overage-list tr.overage')].map(r => ({license: r.dataset.license, live: r.dataset.live, max: r.dataset.max, overage: r.dataset.overage, text: r.innerText}))`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("the page logged problems: %v", p)
	}
	checkNotBlank(t, shot)
	if metrics["in_grace"] != "1" || metrics["expired"] != "1" || metrics["overage_seats"] != "1" {
		t.Errorf("headline cards: %v", metrics)
	}
	if len(grace) != 1 || grace[0]["license"] != lastDay.License.ID || grace[0]["ends"] != lastDay.License.GraceEndsAt().Format(time.RFC3339) ||
		!strings.Contains(grace[0]["text"], "Globex") {
		t.Errorf("licenses in grace on the page: %v", grace)
	}
	if len(overage) != 1 || overage[0]["live"] != "3" || overage[0]["max"] != "2" || overage[0]["overage"] != "1" ||
		!strings.Contains(overage[0]["text"], "50% (up to 3 seats)") {
		t.Errorf("overage seats on the page: %v", overage)
	}
	if raw, _ := os.ReadFile(out); bytes.Contains(raw, []byte(past.License.ID)) {
		t.Error("the license past its grace is on the page")
	}
}
