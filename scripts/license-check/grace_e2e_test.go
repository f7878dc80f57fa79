package main_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Grace and overage with the real binaries: serve, generate-license and
// update-license with the new terms, license-check and license-check run
// with a real child.
func TestGraceAndOverageAgainstServe(t *testing.T) {
	// Beside the other tests that wait on real leases: most of their time
	// is waiting.
	t.Parallel()
	t.Run("the overage seat runs warned, the one after is refused, stats count it", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		// 1 instance and 100%: 2 seats.
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "1", "--overage-percent", "100")
		s.instance("node-a").want("activate", key, 0, "VALID")
		b := s.instance("node-b")
		r := s.run(check, "activate", "--server", s.url, "--key", key, "--instance-id", b.id, "--state-dir", b.state)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "OVERAGE: ") || !strings.Contains(r.stderr, "license-check: warning: OVERAGE: ") {
			t.Fatalf("the overage seat: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
		}
		if o := b.want("check", key, 0, "OVERAGE"); !o.FromLease || !o.Lease.Overage {
			t.Fatalf("the overage seat on its lease: %+v", o)
		}
		s.instance("node-c").want("activate", key, 1, "TOO_MANY_INSTANCES")
		var st struct {
			Seats struct {
				Live    int `json:"live"`
				Overage int `json:"overage"`
			} `json:"seats"`
		}
		if err := json.Unmarshal([]byte(s.run(manage, "--json", "stats").stdout), &st); err != nil || st.Seats.Live != 2 || st.Seats.Overage != 1 {
			t.Fatalf("stats: %+v %v", st.Seats, err)
		}
	})

	t.Run("run keeps COMMAND running into the grace, and says so", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "2", "--lease-minutes", "1", "--grace-days", "1")
		// The license now ends in a little over a minute (a new key comes
		// with the new expiry; its own expiry is that too).
		ends := time.Now().UTC().Add(75 * time.Second).Truncate(time.Second)
		key = s.ok("update-license", key, "--expires-at", ends.Format(time.RFC3339))
		script, log := child(t, false)
		statusFile := filepath.Join(t.TempDir(), "status.json")
		p := s.supervise(t, key, "--instance-id", "node-1", "--state-dir", t.TempDir(), "--status-file", statusFile, "--", script)
		logged(t, log, "started", 20*time.Second)
		if r := status(t, statusFile); r.Code != "VALID" || r.Lease == nil || !r.Lease.LicenseEndsAt.Equal(ends) {
			t.Fatalf("before the license's end: %+v", r)
		}
		// Past the license's end: GRACE, reported when it happens, and
		// COMMAND still runs.
		sleepUntil(ends.Add(5 * time.Second))
		if r := status(t, statusFile); r.Code != "GRACE" || !r.OK || !strings.Contains(r.Detail, ends.Add(24*time.Hour).Format(time.RFC3339)) {
			t.Fatalf("in the grace: %+v\n%s", r, p.stderr.String())
		}
		if !strings.Contains(p.stderr.String(), "license-check run: GRACE: ") {
			t.Fatalf("no GRACE line on stderr:\n%s", p.stderr.String())
		}
		select {
		case <-p.done:
			t.Fatalf("COMMAND was stopped in the grace:\n%s", p.stderr.String())
		default:
		}
		// A new instance of the expired key runs in the grace too; one more
		// is told the seats are taken, not that the key expired.
		s.instance("node-2").want("activate", key, 0, "GRACE")
		s.instance("node-3").want("activate", key, 1, "TOO_MANY_INSTANCES")
		var st struct {
			InGrace int `json:"in_grace"`
		}
		if err := json.Unmarshal([]byte(s.run(manage, "--json", "stats").stdout), &st); err != nil || st.InGrace != 1 {
			t.Fatalf("stats: %+v %v", st, err)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(t, 20*time.Second); code != 143 {
			t.Fatalf("exit %d, want COMMAND's 143\n%s", code, p.stderr.String())
		}
	})
}
