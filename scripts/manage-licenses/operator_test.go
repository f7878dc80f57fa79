package main_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// The operator's first hour, as a new operator stumbled through it: each
// stumble, through the built binary.

// licensed is a CLI with a customer and a license; it returns the key and
// the license id.
func licensed(t *testing.T) (*cli, string, string) {
	c := newCLI(t)
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.ok("add-customer", "CUST-001", "Acme", "--email", "ops@example.test")
	r := c.ok("--json", "generate-license", "CUST-001", "standard", "--max-instances", "3")
	var is struct {
		Key     string `json:"license_key"`
		License struct {
			ID string `json:"license_id"`
		} `json:"license"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &is); err != nil || is.License.ID == "" {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	return c, is.Key, is.License.ID
}

func TestBusyPortSaysHowToChooseAnother(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := newCLI(t)
	r := c.fails(1, "CONFIG", "make run ADDR=HOST:PORT", "serve", "--addr", l.Addr().String())
	if !strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "--addr HOST:PORT") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	// A port alone is local; a host without a port is a usage error.
	c.fails(2, "BAD_REQUEST", "HOST:PORT", "serve", "--addr", "localhost")
}

func TestHintsNameWhatWasUsed(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	typo := filepath.Join(c.home, "typo.db")
	c.fails(1, "DB_NOT_FOUND", "create it with: manage-licenses init-db --db "+typo, "list-customers", "--db", typo)
	spaced := filepath.Join(c.home, "with space.db")
	c.fails(1, "DB_NOT_FOUND", "manage-licenses init-db --db '"+spaced+"'", "list-customers", "--db", spaced)
	c.ok("init-db", "--db", spaced) // a space in the path, which SQLite's URI once took as '+'
	c.ok("add-customer", "C1", "Spaced", "--db", spaced)
	r := c.run(map[string]string{"CAIO_LICENSE_DB_PATH": typo}, "list-customers")
	if r.code != 1 || !strings.Contains(r.stderr, "check CAIO_LICENSE_DB_PATH") || strings.Contains(r.stderr, "--db") {
		t.Fatalf("env path: exit %d: %s", r.code, r.stderr)
	}
	// The hint's command works as printed.
	c.ok("init-db", "--db", typo)
	c.ok("list-customers", "--db", typo)

	// A quoted ~ (a unit file, a .env) is the home directory, not a
	// directory named "~".
	r = c.run(map[string]string{"CAIO_LICENSE_DB_PATH": "~/tilde.db"}, "init-db")
	if r.code != 0 || !strings.Contains(r.stdout, filepath.Join(c.home, "tilde.db")) {
		t.Fatalf("~ in CAIO_LICENSE_DB_PATH: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(c.home, "tilde.db")); err != nil {
		t.Fatal(err)
	}
	r = c.run(map[string]string{"CAIO_LICENSE_DB_PATH": "~bob/x.db"}, "list-customers")
	if r.code != 1 || !strings.Contains(r.stderr, "write the full path") {
		t.Fatalf("~bob: exit %d: %s", r.code, r.stderr)
	}

	// restore's FILE is the mistake, not the database.
	c.ok("init-db")
	notDB := filepath.Join(c.home, "notes.txt")
	os.WriteFile(notDB, []byte("not a database at all, but long enough to have a header of sorts............................................."), 0o600)
	r = c.fails(2, "BAD_REQUEST", "give a file written by 'manage-licenses backup'", "restore", notDB, "--yes")
	if strings.Contains(r.stderr, "--db") || strings.Contains(r.stderr, "CAIO_LICENSE_DB_PATH") {
		t.Fatalf("restore blames the database path: %s", r.stderr)
	}
	r = c.fails(2, "BAD_REQUEST", "no such file", "restore", filepath.Join(c.home, "missing.db"), "--yes")
	if strings.Contains(r.stderr, "init-db") {
		t.Fatalf("restore of a missing file suggests init-db: %s", r.stderr)
	}
}

func TestNoBucketNamesTheFlag(t *testing.T) {
	t.Parallel()
	srv := s3test.StartVersity(t)
	c := s3CLI(t, srv)
	delete(c.env, "CAIO_LICENSE_DB_PATH")
	r := c.fails(1, "CONFIG", "bucket nosuchbucket does not exist", "list-customers", "--db", "s3://nosuchbucket/x.db")
	if !strings.Contains(r.stderr, "check --db") || strings.Contains(r.stderr, "CAIO_LICENSE_DB_PATH") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	r = c.run(map[string]string{"CAIO_LICENSE_DB_PATH": "s3://nosuchbucket/x.db"}, "list-customers")
	if r.code != 1 || !strings.Contains(r.stderr, "check CAIO_LICENSE_DB_PATH") {
		t.Fatalf("env: exit %d: %s", r.code, r.stderr)
	}
}

func TestDashIsStandardOutput(t *testing.T) {
	t.Parallel()
	c, _, _ := licensed(t)
	cases := map[string][]string{
		"<!DOCTYPE html>":     {"report", "--output", "-"},
		"license_id,":         {"export-licenses", "--format", "csv", "-o", "-"},
		`"kind":`:             {"export-events", "--since", "1d", "--output", "-"},
		"SQLite format 3\x00": {"backup", "--output", "-"},
	}
	for want, args := range cases {
		r := c.ok(args...)
		if !strings.Contains(r.stdout, want) {
			t.Errorf("%s: stdout lacks %q: %.200q", strings.Join(args, " "), want, r.stdout)
		}
	}
	if _, err := os.Stat("-"); err == nil {
		t.Fatal("a file named - was written")
	}
	// The backup's bytes on stdout are a database the CLI reads back.
	r := c.ok("backup", "--output", "-")
	copyDB := filepath.Join(c.home, "from-stdout.db")
	os.WriteFile(copyDB, []byte(r.stdout), 0o600)
	if r := c.ok("--db", copyDB, "list-customers"); !strings.Contains(r.stdout, "CUST-001") {
		t.Fatalf("backup from stdout: %s", r.stdout)
	}

	// An existing backup is not replaced without --force.
	out := filepath.Join(c.home, "b.db")
	c.ok("backup", "--output", out)
	before, _ := os.ReadFile(out)
	c.fails(2, "BAD_REQUEST", "--force", "backup", "--output", out)
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatal("the refused backup changed the file")
	}
	c.ok("backup", "--output", out, "--force")
	c.fails(2, "BAD_REQUEST", "is a directory", "backup", "--output", c.home, "--force")
}

// The operator frees a seat by the license id a listing shows.
func TestDeactivateByLicenseID(t *testing.T) {
	t.Parallel()
	c, key, id := licensed(t)
	for _, inst := range []string{"node-0000000000000000000001", "node-0000000000000000000002"} {
		c.ok("track-activation", key, "--instance-id", inst)
	}
	// Ids that differ at the end stay apart in the listing.
	if r := c.ok("list-activations"); !strings.Contains(r.stdout, "01") || !strings.Contains(r.stdout, "02") {
		t.Fatalf("listing loses the ends of the ids:\n%s", r.stdout)
	}
	c.ok("deactivate", id, "--instance-id", "node-0000000000000000000001")
	c.ok("deactivate", id[:8], "--instance-id", "node-0000000000000000000002")
	if r := c.ok("list-activations", "--status", "live"); strings.Contains(r.stdout, "node-") {
		t.Fatalf("seats still live:\n%s", r.stdout)
	}
}

func TestSkippedRemindersAreRecorded(t *testing.T) {
	t.Parallel()
	c, _, id := licensed(t)
	r := c.ok("renewal-reminders", "--send", "--days", "400")
	if !strings.Contains(r.stdout, "1 skipped") {
		t.Fatalf("send: %s", r.stdout)
	}
	var ds []struct {
		Kind, Outcome, Provider, Error string
		Threshold                      int `json:"threshold_days"`
	}
	r = c.ok("--json", "list-deliveries")
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 || ds[0].Outcome != "skipped" || ds[0].Kind != "reminder" || ds[0].Threshold != 400 {
		t.Fatalf("list-deliveries: %v %s", err, r.stdout)
	}
	r = c.ok("--json", "show-license", id)
	if !strings.Contains(r.stdout, `"outcome": "skipped"`) {
		t.Fatalf("show-license lacks the skipped reminder: %s", r.stdout)
	}
	r = c.ok("list-events", "--kind", "delivery.skipped")
	if strings.Count(r.stdout, "delivery.skipped") != 1 {
		t.Fatalf("events: %s", r.stdout)
	}
}

func TestWordsSayWhatHappened(t *testing.T) {
	t.Parallel()
	c, key, id := licensed(t)
	// A failed resend does not claim a license was generated.
	r := c.run(map[string]string{"CAIO_SMTP_SERVER": "127.0.0.1", "CAIO_SMTP_PORT": "1", "CAIO_SMTP_SENDER": "licenses@example.test"},
		"resend-license", id, "--to", "ops@example.test")
	if r.code != 1 || strings.Contains(r.stderr, "generated") || !strings.Contains(r.stderr, "resend-license "+id) {
		t.Fatalf("resend failure: exit %d: %s", r.code, r.stderr)
	}
	// The version says the commit once.
	r = c.ok("--version")
	if n := strings.Count(r.stdout, "commit"); n > 1 {
		t.Fatalf("--version: %s", r.stdout)
	}
	// The churn limit in force, and whether it is the default.
	r = c.ok("--json", "show-license", key)
	var lic map[string]any
	json.Unmarshal([]byte(r.stdout), &lic)
	if lic["max_activations_per_day"] != float64(10) || lic["max_activations_per_day_is_default"] != true || lic["effective_status"] != "active" || lic["keys"] == nil {
		t.Fatalf("show-license --json: %v", lic)
	}
	c.ok("update-license", id, "--max-activations-per-day", "25")
	r = c.ok("--json", "list-licenses")
	var lics []map[string]any
	json.Unmarshal([]byte(r.stdout), &lics)
	if len(lics) != 1 || lics[0]["max_activations_per_day"] != float64(25) || lics[0]["max_activations_per_day_is_default"] != false {
		t.Fatalf("list-licenses --json: %v", lics)
	}
	r = c.ok("export-licenses", "--format", "json")
	json.Unmarshal([]byte(r.stdout), &lics)
	if len(lics) != 1 || lics[0]["license_key"] == nil || lics[0]["effective_status"] != "active" || lics[0]["max_activations_per_day"] != float64(25) {
		t.Fatalf("export-licenses --format json: %v", lics)
	}
}

func TestSameTermsTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	c, _, id := licensed(t)
	c.ok("update-license", id, "--expires-at", "2030-01-01")
	events := c.ok("--json", "list-events", "--kind", "license.updated").stdout
	r := c.ok("update-license", id, "--expires-at", "2030-01-01")
	if !strings.Contains(r.stdout, "already has these terms") || strings.Contains(r.stdout, "CAIO-v1-") {
		t.Fatalf("second update: %s", r.stdout)
	}
	if again := c.ok("--json", "list-events", "--kind", "license.updated").stdout; again != events {
		t.Fatalf("the no-op logged an event:\n%s\nthen\n%s", events, again)
	}
	var detail struct{ Keys []any }
	json.Unmarshal([]byte(c.ok("--json", "show-license", id).stdout), &detail)
	if len(detail.Keys) != 2 { // the first key, and the one the real update issued
		t.Fatalf("keys after a no-op: %d", len(detail.Keys))
	}
}

func TestTablesFitAHundredColumns(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.ok("add-customer", "CUSTOMER-WITH-A-LONG-ID-0001", "A customer whose name goes on and on", "--email", "someone.with.a.long.address@subdomain.example-company.test")
	key := c.ok("generate-license", "CUSTOMER-WITH-A-LONG-ID-0001", "enterprise-plus", "--max-instances", "5").lastLine()
	c.ok("track-activation", key, "--instance-id", "instance-with-a-really-rather-long-name-0001.cluster.local", "--ip-address", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
	c.ok("deactivate", key, "--instance-id", "instance-with-a-really-rather-long-name-0001.cluster.local")
	c.ok("renewal-reminders", "--send", "--days", "400")
	for _, cmd := range []string{"list-activations", "list-events", "list-deliveries"} {
		r := c.ok(cmd)
		for _, line := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
			if n := utf8.RuneCountInString(line); n > 100 {
				t.Errorf("%s: a line of %d columns: %q", cmd, n, line)
			}
		}
		wide := c.ok(cmd, "--wide")
		if !strings.Contains(wide.stdout, "T") || strings.Contains(wide.stdout, "…") {
			t.Errorf("%s --wide cuts values:\n%s", cmd, wide.stdout)
		}
	}
	// The short id a table shows is accepted back.
	r := c.ok("list-activations")
	short := strings.Fields(strings.Split(r.stdout, "\n")[1])[0]
	if len(short) != 8 {
		t.Fatalf("short id %q", short)
	}
	c.ok("show-license", short)
	if r := c.ok("list-deliveries"); strings.Count(r.stdout, "email delivery skipped") > 0 {
		t.Fatalf("a skipped row repeats the long warning: %s", r.stdout)
	}
}

func TestCommandsThatNeedNoSecretDeriveNone(t *testing.T) {
	t.Parallel()
	c, key, _ := licensed(t)
	// This machine proved the keys with the secret once (generate). A
	// command that needs no secret neither reads a broken --secret-arn nor
	// derives from a wrong secret: it would fail if it did either.
	c.ok("--secret-arn", "arn:aws:secretsmanager:us-east-1:000000000000:secret:nope", "stats")
	r := c.run(map[string]string{"CAIO_LICENSE_SECRET": "a-different-but-long-enough-secret-for-this-test-0123456789"}, "track-activation", key, "--instance-id", "i-1")
	if r.code != 0 {
		t.Fatalf("track-activation derived the sealing key it does not need: %s", r.stderr)
	}
	// A command that needs it still refuses the wrong one.
	c.env["CAIO_LICENSE_SECRET"] = "a-different-but-long-enough-secret-for-this-test-0123456789"
	c.fails(1, "SECRET_MISMATCH", "does not match", "generate-license", "CUST-001", "standard")
}

// make build stamps nothing that changes from one build to the next, so an
// unchanged tree links nothing (its time is measured, not asserted here).
func TestBuildIsReproducible(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	sum := func() [32]byte {
		dir := t.TempDir()
		cmd := exec.Command("make", "-s", "-C", "../..", "build", "BIN="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "manage-licenses"))
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	if sum() != sum() {
		t.Fatal("two builds of the same tree differ: something stamps the build time")
	}
}

// serve's first start with the secret certifies a server key: a note of
// what it did, not a warning.
func TestServeFirstCertificationIsANote(t *testing.T) {
	t.Parallel()
	c, _, _ := licensed(t)
	cmd := exec.Command(binary, "serve", "--addr", "0")
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH"), "CAIO_LICENSE_SECRET=" + testSecret}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var seen []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.HasPrefix(sc.Text(), "Serving the licensing API on http://127.0.0.1:") {
			break
		}
	}
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "\ncertified a new server key") && !strings.HasPrefix(all, "certified a new server key") {
		t.Fatalf("no note of the certification (a port alone is 127.0.0.1:PORT):\n%s", all)
	}
	if strings.Contains(all, "warning: certified") {
		t.Fatalf("the first certification is called a warning:\n%s", all)
	}
}

// make local-aws builds only what scripts/local-aws.sh runs, not the test
// dependencies (Chromium, cfn-lint, the SES emulator), then runs it.
func TestLocalAWSTargetBuildsOnlyItsTools(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	out, err := exec.Command("make", "-n", "-B", "-C", "../..", "local-aws").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n local-aws: %v\n%s", err, out)
	}
	plan := string(out)
	for _, want := range []string{"versitygw@", "kumo", "./scripts/local-aws.sh", "go build"} {
		if !strings.Contains(plan, want) {
			t.Errorf("make local-aws does not run %q:\n%s", want, plan)
		}
	}
	for _, not := range []string{"apt-get", "cfn-lint", "chromium", "mailpit", "aws-ses-v2-local", "aws-lambda-rie"} {
		if strings.Contains(plan, not) {
			t.Errorf("make local-aws runs %q, which it does not need:\n%s", not, plan)
		}
	}
}
