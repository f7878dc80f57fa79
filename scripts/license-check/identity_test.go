package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An instance restarted without --instance-id takes back its own seat: the
// id made on its first start is kept in its state directory. One from
// --instance-id-from (a StatefulSet's pod name) is the same across hosts
// that share nothing.
func TestIdentitiesSurviveRestarts(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "2")
	activate := func(env []string, extra ...string) result {
		t.Helper()
		saved := s.env
		s.env = append(append([]string{}, s.env...), env...)
		defer func() { s.env = saved }()
		return s.run(check, append([]string{"activate", "--server", s.url, "--key", key, "--json"}, extra...)...)
	}
	live := func() []string {
		t.Helper()
		r := s.run(manage, "--json", "list-activations", "--license-key", key, "--status", "live")
		var acts []struct {
			InstanceID string `json:"instance_id"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &acts); err != nil {
			t.Fatalf("list-activations: %v %s %s", err, r.stdout, r.stderr)
		}
		var ids []string
		for _, a := range acts {
			ids = append(ids, a.InstanceID)
		}
		return ids
	}

	state := t.TempDir()
	for range 3 { // a restart, and another
		if r := activate(nil, "--state-dir", state); r.code != 0 {
			t.Fatalf("activate without --instance-id: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
	}
	kept, err := os.ReadFile(filepath.Join(state, "instance-id"))
	if ids := live(); err != nil || len(ids) != 1 || ids[0] != strings.TrimSpace(string(kept)) {
		t.Fatalf("three starts with one state directory hold seats %v (kept id %q, %v): want one", ids, kept, err)
	}

	// A pod of a StatefulSet, rescheduled with a fresh state directory.
	for range 2 {
		if r := activate([]string{"POD_NAME=web-0"}, "--instance-id-from", "env:POD_NAME", "--state-dir", t.TempDir()); r.code != 0 {
			t.Fatalf("--instance-id-from env:POD_NAME: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
	}
	if ids := live(); len(ids) != 2 || !strings.Contains(strings.Join(ids, " "), "web-0") {
		t.Fatalf("seats %v: want the kept id and web-0", ids)
	}

	for _, c := range []struct {
		env  []string
		args []string
		says string
	}{
		{nil, []string{"--instance-id-from", "env:POD_NAME", "--state-dir", t.TempDir()}, "$POD_NAME is not set"},
		{[]string{"POD_NAME=bad\x01id"}, []string{"--instance-id-from", "env:POD_NAME", "--state-dir", t.TempDir()}, "not usable"},
		{nil, []string{"--instance-id-from", "serial-number", "--state-dir", t.TempDir()}, "hostname, machine-id or env:NAME"},
		{nil, []string{"--instance-id", "a", "--instance-id-from", "hostname", "--state-dir", t.TempDir()}, "not both"},
	} {
		if r := activate(c.env, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.says) {
			t.Errorf("%v: exit %d %q, want 2 saying %q", c.args, r.code, r.stderr, c.says)
		}
	}

	// A kept id is read, never followed: a link planted in its place is
	// refused (exit 1), not used to take someone else's seat.
	planted := t.TempDir()
	os.WriteFile(filepath.Join(planted, "other"), []byte("someone-else\n"), 0o600)
	os.Symlink(filepath.Join(planted, "other"), filepath.Join(planted, "instance-id"))
	if r := activate(nil, "--state-dir", planted); r.code != 1 || !strings.Contains(r.stderr, "symbolic link") {
		t.Errorf("a linked instance-id file: exit %d %s %s, want 1", r.code, r.stdout, r.stderr)
	}
	if ids := live(); len(ids) != 2 {
		t.Fatalf("seats %v after the planted link", ids)
	}
}
