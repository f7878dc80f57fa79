package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/caio-licensing/caio-licensing/shared/contract"
)

// chromium finds Debian's Chromium (make test installs it).
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CAIO_REQUIRE_TEST_TOOLS") != "" {
			t.Fatal("chromium not installed (Debian package chromium; make test-tools installs it)")
		}
		t.Skip("chromium not installed")
	}
	return path
}

// The report, opened in a real browser: it renders (not blank), logs no
// console error, loads nothing from the network, and shows the numbers
// stats --json gives.
func TestReportInChromium(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	c, key := servedCLI(t)
	c.ok("add-customer", "CUST-002", "Globex")
	full := c.ok("generate-license", "CUST-002", "enterprise", "--max-instances", "2", "--expires-days", "20").lastLine()
	c.ok("track-activation", full, "--instance-id", "g-1")
	c.ok("track-activation", full, "--instance-id", "g-2")
	c.ok("generate-license", "CUST-001", "trial", "--expires-days", "40")
	revoked := c.ok("--json", "generate-license", "CUST-001", "standard")
	var rv struct {
		Claims struct {
			ID string `json:"license_id"`
		} `json:"claims"`
	}
	if json.Unmarshal([]byte(revoked.stdout), &rv); rv.Claims.ID == "" {
		t.Fatalf("generate-license --json: %s", revoked.stdout)
	}
	c.ok("revoke-license", rv.Claims.ID)
	// Refusals reach the database with a server's next write: two forged
	// keys, then an activation, through serve.
	srv := startServe(t, c)
	post(t, http.DefaultClient, srv.url, "CAIO-v1-forged", nil)
	post(t, http.DefaultClient, srv.url, "CAIO-v1-forged-again", nil)
	req, _ := http.NewRequest("POST", srv.url+contract.PathActivate, strings.NewReader(`{"license_key":"`+key+`"}`))
	req.Header.Set(contract.HeaderInstanceID, "served-1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("activate through serve: %v %v", resp, err)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()
	out := filepath.Join(c.home, "report.html")
	c.ok("report", "--output", out, "--days", "60")
	var stats map[string]any
	if err := json.Unmarshal([]byte(c.ok("--json", "stats", "--days", "60").stdout), &stats); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(out)
	if bytes.Contains(raw, []byte("http://")) && !bytes.Contains(raw, []byte(`xmlns="http://www.w3.org/2000/svg"`)) || bytes.Contains(raw, []byte("<script")) || bytes.Contains(raw, []byte("https://")) {
		t.Fatal("the report refers to the network or runs scripts")
	}

	ctx, problems := inChromium(t, browser, out, "seats-chart")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll('[data-metric]')].map(e => [e.dataset.metric, e.textContent.trim()]))`))
	if err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#expiring-chart g.bar').length`))
	if err != nil {
		t.Fatal(err)
	}
	customers, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#seats-chart g.customer').length`))
	if err != nil {
		t.Fatal(err)
	}
	atLimit, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById('at-limit') || {textContent: ''}).textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("the page logged problems: %v", p)
	}
	os.WriteFile(filepath.Join(c.home, "report.png"), shot, 0o600)
	checkNotBlank(t, shot)
	if stats["revoked"].(float64) != 1 || stats["expiring_soon"].(float64) == 0 {
		t.Fatalf("the data does not exercise the counts: %v", stats)
	}
	for _, k := range []string{"total", "active", "in_grace", "expired", "expiring_soon", "suspended", "revoked", "customers", "active_instances"} {
		want := strconv.Itoa(int(stats[k].(float64)))
		if metrics[k] != want {
			t.Errorf("%s: the page shows %q, stats --json says %s", k, metrics[k], want)
		}
	}
	if metrics["seats_sold"] != "5" || metrics["seats_used"] != "3" || metrics["refusals"] != "2" {
		t.Errorf("seats in use/sold on the page: %s/%s, want 3/5; refusals %s, want 2", metrics["seats_used"], metrics["seats_sold"], metrics["refusals"])
	}
	if bars != 9 || customers != 2 || !strings.Contains(atLimit, "Globex (2/2)") {
		t.Errorf("charts: %d week bars (want 9), %d customers (want 2), at limit %q", bars, customers, atLimit)
	}
}

// inChromium opens the page at path in headless Chromium, cut off from the
// network, and waits for the element with id waitID; problems lists what
// the page logged as errors, warnings or exceptions so far.
func inChromium(t *testing.T, browser, path, waitID string) (ctx context.Context, problems func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 1400))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel = chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	var mu sync.Mutex
	var logged []string
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				logged = append(logged, fmt.Sprintf("console %s", e.Type))
			}
		case *runtime.EventExceptionThrown:
			logged = append(logged, "exception: "+e.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.ID(waitID))); err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(logged)
	}
}

// checkNotBlank decodes the screenshot and wants ink in it: dark text and
// several colours from the charts.
func checkNotBlank(t *testing.T, shot []byte) {
	t.Helper()
	img, err := decodeImage(shot)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]bool{}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 12, g >> 12, bl >> 12}] = true
			if r+g+bl < 3*0x4000 {
				dark++
			}
		}
	}
	if len(colours) < 8 || dark < 500 {
		t.Fatalf("the screenshot looks blank: %d colours, %d dark pixels", len(colours), dark)
	}
}
