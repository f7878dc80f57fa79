package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
)

// license-check run with a real child: a shell script that records the
// signals it gets. Leases of one minute, so that renewals happen while the
// tests watch (renewal is due after half the lease).

// child writes the script; with ignoreTERM it does not stop on SIGTERM.
func child(t *testing.T, ignoreTERM bool) (script, log string) {
	dir := t.TempDir()
	script, log = filepath.Join(dir, "caio.sh"), filepath.Join(dir, "signals.log")
	term := `trap 'echo TERM >> "$LOG"; exit 143' TERM`
	if ignoreTERM {
		term = `trap 'echo TERM-ignored >> "$LOG"' TERM`
	}
	body := fmt.Sprintf("#!/bin/sh\nLOG=%q\ntrap 'echo HUP >> \"$LOG\"' HUP\n%s\necho started >> \"$LOG\"\nwhile :; do sleep 0.1; done\n", log, term)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

// supervised is a license-check run in the background.
type supervised struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func (s *site) supervise(t *testing.T, key string, args ...string) *supervised {
	t.Helper()
	p := &supervised{done: make(chan struct{})}
	p.cmd = exec.Command(check, append([]string{"run", "--server", s.url, "--key", key}, args...)...)
	p.cmd.Env = s.env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	// A group of its own, so that a failed test stops COMMAND too (it
	// would hold the output pipes open, and the test with them).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() { syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); <-p.done })
	return p
}

// exit waits for the supervisor to end, at most d.
func (p *supervised) exit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("license-check run still running after %s\nstdout: %s\nstderr: %s", d, p.stdout.String(), p.stderr.String())
	}
	return 0
}

// logged waits until the child's log holds line, at most d.
func logged(t *testing.T, log, line string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), line+"\n") {
			return
		}
	}
	b, _ := os.ReadFile(log)
	t.Fatalf("the child did not log %q within %s: %q", line, d, b)
}

func status(t *testing.T, file string) licenseclient.Result {
	t.Helper()
	var r licenseclient.Result
	b, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(b, &r) != nil {
		t.Fatalf("status file: %v %q", err, b)
	}
	return r
}

func TestRunHoldsTheSeatForCAIO(t *testing.T) {
	// Beside the other tests that wait on real leases: most of their time
	// is waiting.
	t.Parallel()
	t.Run("starts COMMAND on the seat, passes signals, frees the seat and exits with its status", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "1", "--lease-minutes", "1")
		script, log := child(t, false)
		statusFile := filepath.Join(t.TempDir(), "status.json")
		p := s.supervise(t, key, "--instance-id", "node-1", "--state-dir", t.TempDir(), "--status-file", statusFile, "--", script)
		logged(t, log, "started", 20*time.Second)
		if r := status(t, statusFile); r.Code != "VALID" || r.Lease == nil {
			t.Fatalf("status while running: %+v", r)
		}
		// The seat is held: another instance is refused.
		if r := s.run(check, "activate", "--server", s.url, "--key", key, "--instance-id", "node-2", "--state-dir", t.TempDir()); r.code != 1 || !strings.Contains(r.stdout, "TOO_MANY_INSTANCES") {
			t.Fatalf("a second instance while run holds the seat: exit %d %s", r.code, r.stdout)
		}
		p.cmd.Process.Signal(syscall.SIGHUP)
		logged(t, log, "HUP", 10*time.Second)
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(t, 20*time.Second); code != 143 {
			t.Fatalf("exit %d, want COMMAND's 143\n%s", code, p.stderr.String())
		}
		logged(t, log, "TERM", time.Second)
		if !strings.Contains(p.stderr.String(), "VALID") || !strings.Contains(p.stderr.String(), "DEACTIVATED") {
			t.Fatalf("stderr does not say each state:\n%s", p.stderr.String())
		}
		if r := s.run(manage, "list-activations", "--license-key", key); !strings.Contains(r.stdout, "releasing") {
			t.Fatalf("the seat was not given back:\n%s", r.stdout)
		}
	})

	t.Run("refuses to start COMMAND without a seat", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "1")
		if r := s.run(check, "activate", "--server", s.url, "--key", key, "--instance-id", "other", "--state-dir", t.TempDir()); r.code != 0 {
			t.Fatal(r.stdout, r.stderr)
		}
		script, log := child(t, false)
		p := s.supervise(t, key, "--state-dir", t.TempDir(), "--", script)
		if code := p.exit(t, 20*time.Second); code != 1 || !strings.Contains(p.stdout.String(), "TOO_MANY_INSTANCES") {
			t.Fatalf("exit %d %q, want 1 and the outcome line", code, p.stdout.String())
		}
		if _, err := os.Stat(log); err == nil {
			t.Fatal("COMMAND ran without a seat")
		}
	})

	t.Run("renews while COMMAND runs, and stops it once the license is revoked", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--lease-minutes", "1")
		script, log := child(t, false)
		statusFile := filepath.Join(t.TempDir(), "status.json")
		p := s.supervise(t, key, "--state-dir", t.TempDir(), "--status-file", statusFile, "--", script)
		logged(t, log, "started", 20*time.Second)
		first := status(t, statusFile).Lease
		sleepUntil(first.RenewAfter.Add(3 * time.Second))
		renewed := status(t, statusFile).Lease
		if renewed == nil || !renewed.ExpiresAt.After(first.ExpiresAt) {
			t.Fatalf("not renewed past renew-after: first %+v, now %+v", first, renewed)
		}
		s.ok("revoke-license", key, "--reason", "test")
		if code := p.exit(t, 45*time.Second); code != 1 || !strings.Contains(p.stdout.String(), "REVOKED") {
			t.Fatalf("exit %d %q, want 1 and REVOKED\n%s", code, p.stdout.String(), p.stderr.String())
		}
		logged(t, log, "TERM", time.Second)
	})

	t.Run("runs through an outage on the lease, then stops COMMAND (SIGKILL after --stop-grace)", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--lease-minutes", "1")
		script, log := child(t, true)
		statusFile := filepath.Join(t.TempDir(), "status.json")
		p := s.supervise(t, key, "--state-dir", t.TempDir(), "--status-file", statusFile, "--stop-grace", "2s", "--", script)
		logged(t, log, "started", 20*time.Second)
		lease := status(t, statusFile).Lease
		s.stop() // the server goes away
		sleepUntil(lease.RenewAfter.Add(5 * time.Second))
		if r := status(t, statusFile); r.Code != "VALID" || !r.FromLease {
			t.Fatalf("past renew-after with the server down: %+v, want VALID on the lease", r)
		}
		select {
		case <-p.done:
			t.Fatalf("stopped before the lease ended:\n%s", p.stderr.String())
		default:
		}
		if code := p.exit(t, time.Until(lease.ExpiresAt)+30*time.Second); code != 1 || !strings.Contains(p.stdout.String(), "LEASE_EXPIRED") {
			t.Fatalf("exit %d %q, want 1 and LEASE_EXPIRED\n%s", code, p.stdout.String(), p.stderr.String())
		}
		if time.Now().Before(lease.ExpiresAt) {
			t.Fatal("stopped before the lease ended")
		}
		logged(t, log, "TERM-ignored", time.Second)
		if !strings.Contains(p.stderr.String(), "SIGKILL after 2s") {
			t.Fatalf("stderr:\n%s", p.stderr.String())
		}
	})

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		s := &site{t: t, env: []string{"PATH=" + os.Getenv("PATH")}}
		for _, args := range [][]string{
			{"run", "--key", "k", "--state-dir", "d", "--server", "http://x"}, // no COMMAND
			{"run", "--key", "k", "--state-dir", "d", "--server", "http://x", "--stop-grace", "0s", "--", "true"},
			{"check", "--key", "k", "--state-dir", "d", "--server", "http://x", "--", "true"},
		} {
			if r := s.run(check, args...); r.code != 2 || r.stderr == "" {
				t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
			}
		}
	})
}
