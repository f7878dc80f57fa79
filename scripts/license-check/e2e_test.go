package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// These tests drive the two binaries as operators and CAIO instances do:
// manage-licenses (serve, generate-license, issue-offline-lease) and
// license-check, over real HTTP, with real time passing for 1-minute leases.

var manage, check string

func TestMain(m *testing.M) {
	// These tests mostly wait for one-minute leases to run out: more of
	// them at once than there are cores (go test's default), unless
	// -parallel says otherwise.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
	testtools.RunWithBinaries(m, map[string]string{"../manage-licenses": "manage-licenses", ".": "license-check"},
		func(bins map[string]string) { manage, check = bins["manage-licenses"], bins["license-check"] })
}

const secret = "rJ5n0l7w3v9oZbJc1xQeTq8KdYh7s4GfP6aRtLzE5Ck=" // strong: a new signing key needs one

type site struct {
	t    *testing.T
	home string
	env  []string
	url  string
	pub  string
	stop func()
}

type result struct {
	code           int
	stdout, stderr string
}

func (s *site) run(bin string, args ...string) result {
	s.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func (s *site) ok(args ...string) string {
	s.t.Helper()
	r := s.run(manage, args...)
	if r.code != 0 {
		s.t.Fatalf("manage-licenses %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return lines[len(lines)-1]
}

// newSite makes a database with a customer, and starts serve on it: on
// its first start with the secret, serve certifies its own server key.
func newSite(t *testing.T) *site {
	home := t.TempDir()
	s := &site{t: t, home: home, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"CAIO_LICENSE_DB_PATH=" + filepath.Join(home, "licenses.db"), "CAIO_LICENSE_SECRET=" + secret}}
	s.ok("init-db")
	s.ok("add-customer", "CUST-001", "Acme Corp")
	s.pub = s.ok("public-key")
	s.env = append(s.env, "CAIO_LICENSE_PUBLIC_KEY="+s.pub)
	s.start()
	return s
}

var serving = regexp.MustCompile(`Serving the licensing API on (http://\S+)`)

func (s *site) start() {
	t := s.t
	cmd := exec.Command(manage, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = s.env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var head strings.Builder
	for sc.Scan() {
		head.WriteString(sc.Text() + "\n")
		if m := serving.FindStringSubmatch(sc.Text()); m != nil {
			s.url = m[1]
			break
		}
	}
	if s.url == "" {
		t.Fatalf("serve did not start:\n%s", head.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	s.stop = func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
	t.Cleanup(s.stop)
}

// instance runs license-check for one instance with its own state.
type instance struct {
	s     *site
	id    string
	state string
}

func (s *site) instance(id string) *instance {
	return &instance{s: s, id: id, state: s.t.TempDir()}
}

// outcome is license-check's --json line: the client's own Result.
type outcome = licenseclient.Result

func (i *instance) do(action, key string, extra ...string) (int, outcome) {
	i.s.t.Helper()
	args := append([]string{action, "--server", i.s.url, "--key", key, "--instance-id", i.id, "--state-dir", i.state, "--json"}, extra...)
	r := i.s.run(check, args...)
	var o outcome
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil && r.code != 2 {
		i.s.t.Fatalf("license-check %s: %q %q", action, r.stdout, r.stderr)
	}
	if (r.code == 0) != o.OK {
		i.s.t.Fatalf("license-check %s: exit %d but ok=%v", action, r.code, o.OK)
	}
	return r.code, o
}

func (i *instance) want(action, key string, exit int, code string) outcome {
	i.s.t.Helper()
	got, o := i.do(action, key)
	if got != exit || o.Code != code {
		i.s.t.Fatalf("%s %s: exit %d %s (%s), want exit %d %s", i.id, action, got, o.Code, o.Detail, exit, code)
	}
	return o
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func TestLeasesAgainstServe(t *testing.T) {
	// Beside the other tests that wait on real leases: most of their time
	// is waiting.
	t.Parallel()
	t.Run("a dead instance's seat is taken after its lease", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "1", "--lease-minutes", "1")
		a, b := s.instance("node-a"), s.instance("node-b")
		first := a.want("activate", key, 0, "VALID")
		b.want("activate", key, 1, "TOO_MANY_INSTANCES")
		if o := a.want("check", key, 0, "VALID"); !o.FromLease {
			t.Fatal("check before renew-after asked the server")
		}
		// Past renew-after, check renews the lease with the server.
		sleepUntil(first.Lease.RenewAfter.Add(time.Second))
		renewed := a.want("check", key, 0, "VALID")
		if renewed.FromLease || !renewed.Lease.ExpiresAt.After(first.Lease.ExpiresAt) {
			t.Fatalf("not renewed: %+v, first lease until %v", renewed, first.Lease.ExpiresAt)
		}
		// node-a dies; once its lease runs out, node-b takes the seat.
		b.want("activate", key, 1, "TOO_MANY_INSTANCES")
		sleepUntil(renewed.Lease.ExpiresAt.Add(time.Second))
		b.want("activate", key, 0, "VALID")
		a.want("check", key, 1, "TOO_MANY_INSTANCES")
		b.want("deactivate", key, 0, "DEACTIVATED")
		// node-b gave its seat back; it stays taken until node-b's lease ends.
		if r := s.run(manage, "list-activations", "--license-key", key); !strings.Contains(r.stdout, "expired") || !strings.Contains(r.stdout, "releasing") {
			t.Fatalf("list-activations does not show seats apart:\n%s", r.stdout)
		}
	})
	t.Run("a dead instance's seat is taken after the seat timeout, while its lease still runs", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "1", "--lease-minutes", "3", "--seat-timeout-minutes", "1")
		a, b := s.instance("node-a"), s.instance("node-b")
		first := a.want("activate", key, 0, "VALID")
		l := first.Lease
		if l.ExpiresAt.Sub(l.IssuedAt) != 3*time.Minute || l.RenewAfter.Sub(l.IssuedAt) != 30*time.Second {
			t.Fatalf("lease %v..%v, renew after %v: want 3 minutes, renewal at half the seat timeout", l.IssuedAt, l.ExpiresAt, l.RenewAfter)
		}
		b.want("activate", key, 1, "TOO_MANY_INSTANCES")
		if o := a.want("check", key, 0, "VALID"); !o.FromLease {
			t.Fatal("check before renew-after asked the server")
		}
		// The client follows renew-after, long before half the lease.
		sleepUntil(l.RenewAfter.Add(time.Second))
		renewed := a.want("check", key, 0, "VALID")
		if renewed.FromLease || !renewed.Lease.IssuedAt.After(l.IssuedAt) {
			t.Fatalf("not renewed at renew-after: %+v", renewed)
		}
		l = renewed.Lease
		// node-a dies (it stops calling). Just past the seat timeout,
		// node-b takes the seat, while node-a's lease has two minutes to run.
		b.want("activate", key, 1, "TOO_MANY_INSTANCES")
		sleepUntil(l.IssuedAt.Add(61 * time.Second))
		b.want("activate", key, 0, "VALID")
		if !time.Now().Before(l.ExpiresAt.Add(-time.Minute)) {
			t.Fatal("too slow: node-a's lease is nearly over")
		}
		// node-a was cut off rather than dead: through the outage it runs on
		// its lease, past its renew-after.
		s.stop()
		if o := a.want("check", key, 0, "VALID"); !o.FromLease || !o.Lease.ExpiresAt.Equal(l.ExpiresAt) {
			t.Fatalf("during the outage: %+v", o)
		}
		// Back in touch, it renews and is told its seat was taken.
		s.start()
		a.want("check", key, 1, "TOO_MANY_INSTANCES")
		if r := s.run(manage, "list-activations", "--license-key", key); !regexp.MustCompile(`node-a\s.*expired`).MatchString(r.stdout) ||
			!regexp.MustCompile(`node-b\s.*live`).MatchString(r.stdout) {
			t.Fatalf("list-activations:\n%s", r.stdout)
		}
		var st struct {
			Seats struct {
				Live    int `json:"live"`
				Expired int `json:"expired_lease"`
			} `json:"seats"`
		}
		if err := json.Unmarshal([]byte(s.run(manage, "--json", "stats").stdout), &st); err != nil || st.Seats.Live != 1 || st.Seats.Expired != 1 {
			t.Fatalf("stats: %+v %v", st.Seats, err)
		}
	})
	t.Run("an outage runs on the lease, then LEASE_EXPIRED", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--lease-minutes", "1")
		a := s.instance("node-a")
		first := a.want("activate", key, 0, "VALID")
		s.stop()
		sleepUntil(first.Lease.RenewAfter.Add(time.Second))
		if o := a.want("check", key, 0, "VALID"); !o.FromLease {
			t.Fatalf("during the outage: %+v", o)
		}
		sleepUntil(first.Lease.ExpiresAt.Add(time.Second))
		a.want("check", key, 1, "LEASE_EXPIRED")
	})
	t.Run("offline lease", func(t *testing.T) {
		t.Parallel()
		s := newSite(t)
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "2")
		file := filepath.Join(s.home, "plant-7.lease")
		s.ok("issue-offline-lease", key, "--instance-id", "plant-7", "--days", "30", "--output", file)
		run := func(f string) (int, outcome) {
			r := s.run(check, "check", "--key", key, "--instance-id", "plant-7", "--state-dir", t.TempDir(), "--offline-lease", f, "--json")
			var o outcome
			json.Unmarshal([]byte(r.stdout), &o)
			return r.code, o
		}
		if code, o := run(file); code != 0 || o.Code != "VALID" {
			t.Fatalf("offline lease: exit %d %+v", code, o)
		}
		raw, _ := os.ReadFile(file)
		var lf map[string]string
		json.Unmarshal(raw, &lf)
		tok := []byte(lf["lease"])
		tok[20] ^= 1
		lf["lease"] = string(tok)
		bad := filepath.Join(s.home, "bad.lease")
		b, _ := json.Marshal(lf)
		os.WriteFile(bad, b, 0o600)
		if code, o := run(bad); code != 1 || o.Code != "BAD_SIGNATURE" {
			t.Fatalf("altered offline lease: exit %d %+v", code, o)
		}
		// It holds a seat: one online instance fits beside it, not two.
		s.instance("node-a").want("activate", key, 0, "VALID")
		s.instance("node-b").want("activate", key, 1, "TOO_MANY_INSTANCES")
		if r := s.run(manage, "list-activations", "--license-key", key); !strings.Contains(r.stdout, "offline") {
			t.Fatalf("list-activations does not show the offline lease:\n%s", r.stdout)
		}
	})
	t.Run("S3 mode: seats stay exact under concurrent activations while leases expire", func(t *testing.T) {
		t.Parallel()
		srv := s3test.StartVersity(t)
		home := t.TempDir()
		s := &site{t: t, home: home, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "CAIO_LICENSE_SECRET=" + secret,
			"CAIO_LICENSE_CACHE_DIR=" + t.TempDir()}}
		for k, v := range srv.Env("prod/caio_licenses.db") {
			s.env = append(s.env, k+"="+v)
		}
		s.ok("init-db")
		s.ok("add-customer", "CUST-001", "Acme Corp")
		key := s.ok("generate-license", "CUST-001", "standard", "--max-instances", "3", "--lease-minutes", "1")
		for i := range 3 {
			s.ok("track-activation", key, "--instance-id", fmt.Sprintf("old-%d", i))
		}
		time.Sleep(61 * time.Second)
		var mu sync.Mutex
		won, refused := 0, 0
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 3 {
					r := s.run(manage, "track-activation", key, "--instance-id", fmt.Sprintf("new-%d-%d", w, i))
					mu.Lock()
					switch {
					case r.code == 0:
						won++
					case strings.Contains(r.stderr, "TOO_MANY_INSTANCES"):
						refused++
					default:
						t.Errorf("track-activation: exit %d %s", r.code, r.stderr)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		var st struct {
			Seats struct {
				Live    int `json:"live"`
				Expired int `json:"expired_lease"`
			} `json:"seats"`
		}
		if err := json.Unmarshal([]byte(s.run(manage, "--json", "stats").stdout), &st); err != nil {
			t.Fatal(err)
		}
		if won != 3 || refused != 9 || st.Seats.Live != 3 || st.Seats.Expired != 3 {
			t.Fatalf("won %d, refused %d, seats %+v: want 3 won, 9 refused, 3 live and 3 expired", won, refused, st.Seats)
		}
	})
	t.Run("usage errors exit 2", func(t *testing.T) {
		t.Parallel()
		s := &site{t: t, env: []string{"PATH=" + os.Getenv("PATH")}}
		for _, args := range [][]string{
			{"check"},
			{"frobnicate", "--key", "k", "--instance-id", "i", "--state-dir", "d", "--server", "http://x"},
			{"check", "--key", "k", "--instance-id", "i", "--state-dir", "d"},
			{"check", "--key", "k", "--instance-id", "i", "--state-dir", "d", "--server", "http://x"}, // no public key
			{"check", "--no-such-flag"},
		} {
			if r := s.run(check, args...); r.code != 2 || r.stderr == "" {
				t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
			}
		}
		if r := s.run(check, "--help"); r.code != 0 || !strings.Contains(r.stdout, "--state-dir") {
			t.Errorf("--help: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
	})
}
