package main_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	manage "github.com/caio-licensing/caio-licensing/scripts/manage-licenses"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

var binary string

func TestMain(m *testing.M) {
	// Commands run in-process seal new databases with the least key
	// derivation a database may state: the tests do not test its cost.
	// The binary (execCLI, the examples, serve) keeps the real one.
	secretboxtest.CheapKDF()
	testtools.RunWithBinaries(m, map[string]string{".": "manage-licenses"}, func(bins map[string]string) { binary = bins["manage-licenses"] })
}

const testSecret = "XwgwxBOq4GReE5dNkqVFQjRNVYjzlXi8+msIH5RMVDc=" // strong: a new signing key needs one

// cli runs the CLI with a clean environment: HOME in a temp dir and only
// the variables given. It runs in-process (the run that main runs, with
// its own environment, stdin and streams); a cli made with execCLI runs the
// built binary instead, for what needs a process of its own: the AWS SDK,
// which reads the process's environment (S3, Secrets Manager), signals,
// and commands running side by side.
type cli struct {
	t    *testing.T
	home string
	env  map[string]string
	exec bool
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, home: t.TempDir(), env: map[string]string{}}
}

// execCLI is newCLI running the binary.
func execCLI(t *testing.T) *cli {
	c := newCLI(t)
	c.exec = true
	return c
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) lastLine() string {
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	return lines[len(lines)-1]
}

func (c *cli) run(extraEnv map[string]string, args ...string) result {
	c.t.Helper()
	return c.runWith("", extraEnv, args...)
}

// runStdin runs the CLI with stdin.
func (c *cli) runStdin(stdin string, args ...string) result {
	c.t.Helper()
	return c.runWith(stdin, nil, args...)
}

// environ is the command's whole environment.
func (c *cli) environ(extraEnv map[string]string) map[string]string {
	env := map[string]string{"HOME": c.home, "PATH": os.Getenv("PATH")}
	maps.Copy(env, c.env)
	maps.Copy(env, extraEnv)
	return env
}

func (c *cli) runWith(stdin string, extraEnv map[string]string, args ...string) result {
	c.t.Helper()
	env := c.environ(extraEnv)
	var out, errb bytes.Buffer
	if !c.exec {
		code := manage.Run(context.Background(), args, config.Map(env), strings.NewReader(stdin), &out, &errb)
		return result{out.String(), errb.String(), code}
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(nil, args...)
	if r.code != 0 {
		c.t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (c *cli) fails(wantExit int, wantCode string, wantText string, args ...string) result {
	c.t.Helper()
	r := c.run(nil, args...)
	if r.code != wantExit {
		c.t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, wantExit, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "["+wantCode+"]") && !strings.Contains(last, `"code":"`+wantCode+`"`) {
		c.t.Fatalf("%s: stderr %q lacks code %s", strings.Join(args, " "), r.stderr, wantCode)
	}
	if !strings.Contains(last, wantText) {
		c.t.Fatalf("%s: stderr %q does not say %q", strings.Join(args, " "), last, wantText)
	}
	return r
}

var keyPattern = regexp.MustCompile(`^CAIO-v1-[A-Za-z0-9._-]+$`)

// The operator guide's command lines, run as written with the Python
// script's path replaced by our binary.
func TestGuideWalkthroughVerbatim(t *testing.T) {
	t.Parallel()
	guide, err := os.ReadFile(filepath.Join("..", "..", "testdata", "operator-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	// The guide's SMTP server stands for a real one: Mailpit, with STARTTLS
	// and authentication, takes its place; the other settings stay as written.
	mp := mailtest.StartMailpit(t, true)
	c.env["CAIO_SMTP_CA_FILE"] = mp.CAFile
	substitute := map[string]string{"CAIO_SMTP_SERVER": mp.Host, "CAIO_SMTP_PORT": strconv.Itoa(mp.Port)}
	// The guide's "your-secret" is a placeholder: a signing key is made only
	// under a strong secret, so the operator puts theirs in its place.
	placeholders := map[string]string{"CAIO_LICENSE_SECRET=your-secret": "CAIO_LICENSE_SECRET=" + testSecret}
	key := ""
	ran := 0
	for _, line := range guideCommands(string(guide)) {
		words := shellWords(t, line)
		if words[0] == "export" {
			kv := strings.SplitN(words[1], "=", 2)
			if v, ok := substitute[kv[0]]; ok {
				kv[1] = v
			}
			c.env[kv[0]] = kv[1]
			continue
		}
		env := map[string]string{}
		for strings.Contains(words[0], "=") {
			if v, ok := placeholders[words[0]]; ok {
				words[0] = v
			}
			kv := strings.SplitN(words[0], "=", 2)
			env[kv[0]] = kv[1]
			words = words[1:]
		}
		if len(words) < 2 || words[0] != "python" || words[1] != "scripts/licensing/manage_licenses.py" {
			t.Fatalf("unexpected guide command %q", line)
		}
		args := words[2:]
		for i, a := range args {
			if a == "CAIO-v1-CUST-001-..." {
				args[i] = key
			}
		}
		r := c.run(env, args...)
		ran++
		if r.code != 0 {
			t.Fatalf("guide command %q: exit %d\n%s%s", line, r.code, r.stdout, r.stderr)
		}
		switch args[0] {
		case "generate-license":
			key = r.lastLine()
			if !keyPattern.MatchString(key) || !strings.HasPrefix(key, "CAIO-v1-CUST-001-") || len(key) > 256 {
				t.Fatalf("generate-license's last line is not a key: %q", key)
			}
		case "distribute-license":
			msgs := mp.Messages(t)
			if !keyPattern.MatchString(r.lastLine()) || len(msgs) != 1 || msgs[0].To[0] != "customer@example.com" || !strings.Contains(msgs[0].Text, r.lastLine()) {
				t.Fatalf("distribute-license --send-email: %s%s\nmessages: %+v", r.stdout, r.stderr, msgs)
			}
		case "track-activation":
			if !strings.Contains(r.stdout, "instance-001") {
				t.Fatalf("track-activation: %s", r.stdout)
			}
		case "list-activations":
			if !strings.Contains(r.stdout, "instance-001") || !strings.Contains(r.stdout, "203.0.113.10") {
				t.Fatalf("list-activations does not show the activation:\n%s", r.stdout)
			}
		case "stats":
			for _, want := range []string{"total", "active", "expired", "expiring soon"} {
				if !strings.Contains(r.stdout, want) {
					t.Fatalf("stats lacks %q:\n%s", want, r.stdout)
				}
			}
			if !regexp.MustCompile(`total\s+2\n`).MatchString(r.stdout) {
				t.Fatalf("stats should count the two licenses:\n%s", r.stdout)
			}
		case "export-licenses":
			rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
			if err != nil || len(rows) != 3 || rows[1][len(rows[1])-1] != key {
				t.Fatalf("export csv: %v\n%s", err, r.stdout)
			}
		}
	}
	if ran != 8 {
		t.Fatalf("ran %d guide commands, want 8", ran)
	}
	if _, err := os.Stat(filepath.Join(c.home, ".caio", "caio_licenses.db")); err != nil {
		t.Fatalf("the default database was not created: %v", err)
	}
}

// guideCommands extracts the command lines of the guide's bash blocks,
// joining continuation lines.
func guideCommands(guide string) []string {
	var out []string
	for _, block := range regexp.MustCompile("(?s)```bash\n(.*?)```").FindAllStringSubmatch(guide, -1) {
		joined := strings.ReplaceAll(block[1], "\\\n", " ")
		for _, line := range strings.Split(joined, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

// shellWords splits a line the way sh would for the guide's simple lines:
// white space, double quotes.
func shellWords(t *testing.T, line string) []string {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, inWord = !inQuote, true
		case (r == ' ' || r == '\t') && !inQuote:
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inQuote {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func (c *cli) setup() (db, key string) {
	c.t.Helper()
	db = filepath.Join(c.home, "test.db")
	c.env["CAIO_LICENSE_DB_PATH"] = db
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp", "--email", "ops@acme.test")
	r := c.ok("generate-license", "CUST-001", "standard", "--max-instances", "2", "--features", "analytics", "audit")
	return db, r.lastLine()
}

func TestFeatureFlagForms(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	forms := [][]string{
		{"generate-license", "CUST-001", "standard", "--features", "audit", "analytics"},
		{"generate-license", "--features", "analytics,audit", "--", "CUST-001", "standard"},
		{"generate-license", "CUST-001", "--features=analytics", "--features", "audit", "--max-instances", "3", "standard"},
		{"--json", "generate-license", "CUST-001", "standard", "--features", "analytics", "--features", "audit", "analytics"},
	}
	for _, args := range forms {
		r := c.ok(append([]string{"--json"}, args...)...)
		var out struct {
			Key    string `json:"license_key"`
			Claims struct {
				Features []string `json:"features"`
				Tier     string   `json:"tier"`
			} `json:"claims"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, r.stdout)
		}
		if strings.Join(out.Claims.Features, ",") != "analytics,audit" || out.Claims.Tier != "standard" || !keyPattern.MatchString(out.Key) {
			t.Fatalf("%v gave %+v", args, out)
		}
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	db, key := c.setup()
	garbage := filepath.Join(c.home, "notes.txt")
	os.WriteFile(garbage, []byte("not a database at all, just text"), 0o600)
	tampered := key[:len(key)-3] + "AAA"
	if tampered == key {
		tampered = key[:len(key)-3] + "BBB"
	}
	missing := filepath.Join(c.home, "typo.db")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		exit int
		code string
		says string
	}{
		{"no secret", map[string]string{"CAIO_LICENSE_SECRET": ""}, []string{"generate-license", "CUST-001", "standard"}, 1, "SECRET_REQUIRED", "CAIO_LICENSE_SECRET"},
		{"wrong secret", nil, []string{"generate-license", "CUST-001", "standard", "--secret", "another-long-secret-entirely"}, 1, "SECRET_MISMATCH", "original secret"},
		{"explicit missing db", nil, []string{"stats", "--db", missing}, 1, "DB_NOT_FOUND", "init-db"},
		{"explicit missing db on write", nil, []string{"add-customer", "C9", "X", "--db", missing}, 1, "DB_NOT_FOUND", "init-db --db"},
		{"not a database", nil, []string{"stats", "--db", garbage}, 1, "DB_INVALID", "not a SQLite database"},
		{"mistyped S3 location", nil, []string{"init-db", "--db", "s3:/licenses/caio_licenses.db"}, 2, "BAD_REQUEST", "s3://BUCKET/"},
		{"mistyped S3 location in the environment", map[string]string{"CAIO_LICENSE_DB_PATH": "S3://licenses/caio_licenses.db"}, []string{"init-db"}, 2, "BAD_REQUEST", "CAIO_LICENSE_DB_PATH"},
		{"unknown customer", nil, []string{"generate-license", "CUST-404", "standard"}, 1, "NOT_FOUND", "add-customer"},
		{"duplicate customer", nil, []string{"add-customer", "CUST-001", "Again"}, 1, "ALREADY_EXISTS", "update-customer"},
		{"bad email", nil, []string{"add-customer", "C2", "X", "--email", "x@y.test\r\nBcc: z@z.test"}, 2, "BAD_REQUEST", "not a valid address"},
		{"bad customer id", nil, []string{"add-customer", "C 2", "X"}, 2, "BAD_REQUEST", "customer id"},
		{"zero instances", nil, []string{"generate-license", "CUST-001", "standard", "--max-instances", "0"}, 2, "BAD_REQUEST", "max-instances"},
		{"negative days", nil, []string{"generate-license", "CUST-001", "standard", "--expires-days", "-1"}, 2, "BAD_REQUEST", "expires-days"},
		{"tampered key", nil, []string{"track-activation", tampered, "--instance-id", "i-1"}, 1, "INVALID_KEY", "signature"},
		{"malformed key", nil, []string{"track-activation", "CAIO-v1-nonsense", "--instance-id", "i-1"}, 1, "INVALID_KEY", "malformed"},
		{"no instance id", nil, []string{"track-activation", key}, 2, "BAD_REQUEST", "instance-id"},
		{"unknown export format", nil, []string{"export-licenses", "--format", "xml"}, 2, "BAD_REQUEST", "use csv or json"},
		{"output is a directory", nil, []string{"export-licenses", "--format", "csv", "--output", c.home}, 2, "BAD_REQUEST", "is a directory: give a file name in it"},
		{"unknown flag", nil, []string{"stats", "--dayz", "3"}, 2, "BAD_REQUEST", "--help"},
		{"missing argument", nil, []string{"add-customer", "C3"}, 2, "BAD_REQUEST", "usage"},
		{"unknown status", nil, []string{"list-licenses", "--status", "happy"}, 2, "BAD_REQUEST", "active, grace, expired"},
		{"bad since", nil, []string{"list-events", "--since", "yesterday"}, 2, "BAD_REQUEST", "RFC 3339"},
		{"too many seats", nil, []string{"track-activation", key, "--instance-id", "i-3"}, 1, "TOO_MANY_INSTANCES", "deactivate"},
	}
	c.ok("track-activation", key, "--instance-id", "i-1")
	c.ok("track-activation", key, "--instance-id", "i-2")
	before := c.ok("--json", "list-events").stdout
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.run(tc.env, tc.args...)
			if r.code != tc.exit {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tc.exit, r.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "error ["+tc.code+"]: ") || !strings.Contains(last, tc.says) {
				t.Fatalf("stderr %q, want one line with [%s] saying %q", r.stderr, tc.code, tc.says)
			}
			if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, testSecret) {
				t.Fatalf("stderr leaks internals: %s", r.stderr)
			}
			// Under --json the error is one JSON object with code and
			// message, after any warnings (JSON objects too).
			rj := c.run(tc.env, append([]string{"--json"}, tc.args...)...)
			jl := strings.Split(strings.TrimSpace(rj.stderr), "\n")
			for _, w := range jl[:len(jl)-1] {
				var warning struct{ Warning string }
				if err := json.Unmarshal([]byte(w), &warning); err != nil || warning.Warning == "" {
					t.Fatalf("--json stderr line %q is neither a warning object nor the error", w)
				}
			}
			var obj struct{ Code, Message string }
			if err := json.Unmarshal([]byte(jl[len(jl)-1]), &obj); err != nil || obj.Code != tc.code || obj.Message == "" {
				t.Fatalf("--json error %q: %v", rj.stderr, err)
			}
		})
	}
	c.t = t
	if after := c.ok("--json", "list-events").stdout; after != before {
		t.Fatalf("failed commands changed the event log")
	}
	for _, local := range []string{"s3:", "S3:"} {
		if _, err := os.Stat(local); err == nil {
			t.Cleanup(func() { os.RemoveAll(local) })
			t.Errorf("a mistyped S3 location made a local database under %s", local)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a mistyped --db path was created")
	}
	if raw, _ := os.ReadFile(garbage); string(raw) != "not a database at all, just text" {
		t.Fatal("a non-database file was changed")
	}
	_ = db
}

func TestJSONOutputs(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, key := c.setup()
	c.ok("track-activation", key, "--instance-id", "i-1", "--ip-address", "2001:db8::1")
	var stats map[string]any
	if err := json.Unmarshal([]byte(c.ok("--json", "stats").stdout), &stats); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"total", "active", "expired", "expiring_soon", "suspended", "revoked", "by_tier", "active_instances"} {
		if _, ok := stats[f]; !ok {
			t.Fatalf("stats --json lacks %q: %v", f, stats)
		}
	}
	if stats["total"] != float64(1) || stats["active_instances"] != float64(1) {
		t.Fatalf("stats %v", stats)
	}
	for _, cmd := range [][]string{{"list-customers"}, {"list-licenses"}, {"list-activations"}, {"list-events"}, {"renewal-reminders", "--days", "400"}, {"export-licenses", "--format", "json"}} {
		var arr []map[string]any
		r := c.ok(append([]string{"--json"}, cmd...)...)
		if err := json.Unmarshal([]byte(r.stdout), &arr); err != nil || len(arr) == 0 {
			t.Fatalf("%v --json: not a non-empty array: %v\n%s", cmd, err, r.stdout)
		}
	}
}

func TestDatabaseLocation(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	defaultDB := filepath.Join(c.home, ".caio", "caio_licenses.db")
	// Reading the default database before it exists says what to do.
	c.fails(1, "DB_NOT_FOUND", "init-db", "stats")
	// A write on the default path creates it (the guide starts with add-customer).
	c.ok("add-customer", "CUST-001", "Acme Corp")
	if _, err := os.Stat(defaultDB); err != nil {
		t.Fatal(err)
	}
	// CAIO_LICENSE_DB_PATH overrides the default, --db overrides both.
	envDB := filepath.Join(c.home, "env.db")
	flagDB := filepath.Join(c.home, "flag.db")
	c.env["CAIO_LICENSE_DB_PATH"] = envDB
	c.ok("init-db")
	c.ok("init-db", "--db", flagDB)
	c.ok("add-customer", "ENV-1", "In env db")
	c.ok("add-customer", "FLAG-1", "In flag db", "--db", flagDB)
	for db, want := range map[string]string{defaultDB: "CUST-001", envDB: "ENV-1", flagDB: "FLAG-1"} {
		var cs []struct{ ID string }
		json.Unmarshal([]byte(c.ok("--json", "list-customers", "--db", db).stdout), &cs)
		if len(cs) != 1 || cs[0].ID != want {
			t.Fatalf("%s holds %+v, want only %s", db, cs, want)
		}
	}
	// init-db twice is harmless and keeps the data.
	r := c.ok("init-db")
	if !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("second init-db: %s", r.stdout)
	}
	if !strings.Contains(c.ok("list-customers").stdout, "ENV-1") {
		t.Fatal("init-db lost data")
	}
}

func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	db, key := c.setup()
	c.ok("track-activation", key, "--instance-id", "i-1")

	// public-key prints the key alone; verify-license works with it and no database.
	pub := strings.TrimSpace(c.ok("public-key").stdout)
	if strings.Contains(pub, "\n") || len(pub) != 44 {
		t.Fatalf("public-key output %q", pub)
	}
	r := c.run(map[string]string{"CAIO_LICENSE_PUBLIC_KEY": pub, "CAIO_LICENSE_DB_PATH": filepath.Join(c.home, "none.db"), "CAIO_LICENSE_SECRET": ""}, "verify-license", key)
	if r.code != 0 || !strings.Contains(r.stdout, "signature valid") || !strings.Contains(r.stdout, "analytics, audit") {
		t.Fatalf("verify-license offline: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A key from another database fails against this public key.
	other := newCLI(t)
	_, otherKey := other.setup()
	r = c.run(map[string]string{"CAIO_LICENSE_PUBLIC_KEY": pub}, "verify-license", otherKey)
	if r.code == 0 || !strings.Contains(r.stderr, "INVALID_KEY") {
		t.Fatalf("foreign key verified: %s %s", r.stdout, r.stderr)
	}

	// Renewal: new key, same license, old key still activates, seat carried over.
	r = c.ok("renew-license", key, "--days", "30")
	newKey := r.lastLine()
	if newKey == key || !keyPattern.MatchString(newKey) {
		t.Fatalf("renew-license last line %q", newKey)
	}
	c.ok("track-activation", key, "--instance-id", "i-1")
	r = c.ok("track-activation", newKey, "--instance-id", "i-2")
	if !strings.Contains(r.stdout, "2/2 seats") {
		t.Fatalf("seats did not carry over: %s", r.stdout)
	}

	// Deactivate frees a seat.
	c.ok("deactivate", newKey, "--instance-id", "i-1")
	c.ok("track-activation", key, "--instance-id", "i-3")

	// Suspend, reinstate, revoke.
	c.ok("suspend-license", key, "--reason", "unpaid invoice")
	c.fails(1, "SUSPENDED", "suspended", "track-activation", key, "--instance-id", "i-2")
	c.ok("reinstate-license", key)
	c.ok("revoke-license", newKey)
	c.fails(1, "REVOKED", "revoked", "track-activation", key, "--instance-id", "i-2")
	c.fails(1, "REVOKED", "final", "reinstate-license", key)

	lic := c.ok("list-licenses", "--status", "revoked").stdout
	if !strings.Contains(lic, "revoked") || !strings.Contains(lic, "CUST-001") {
		t.Fatalf("list-licenses --status revoked:\n%s", lic)
	}
	c.ok("update-customer", "CUST-001", "--name", "Acme Corporation", "--email", "billing@acme.test")
	if out := c.ok("list-customers").stdout; !strings.Contains(out, "Acme Corporation") || !strings.Contains(out, "billing@acme.test") {
		t.Fatalf("list-customers after update:\n%s", out)
	}
	events := c.ok("list-events", "--license-key", key).stdout
	for _, kind := range []string{"license.created", "activation.created", "license.renewed", "activation.deactivated", "license.suspended", "license.reinstated", "license.revoked"} {
		if !strings.Contains(events, kind) {
			t.Fatalf("list-events lacks %s:\n%s", kind, events)
		}
	}
	if out := c.ok("list-events", "--since", "2000-01-01").stdout; !strings.Contains(out, "customer.created") {
		t.Fatalf("list-events --since:\n%s", out)
	}
	_ = db
}

func TestExportCSVIsSafeForSpreadsheets(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	c.ok("distribute-license", "CUST-001", "=cmd@evil.test", "standard")
	c.ok("distribute-license", "CUST-001", "+1@evil.test", "standard")
	out := filepath.Join(c.home, "export.csv")
	c.ok("export-licenses", "--format", "csv", "--output", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(out); info.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, want 0600 (it holds keys)", info.Mode().Perm())
	}
	if !bytes.Contains(raw, []byte("\r\n")) {
		t.Fatal("CSV lines must end in CRLF (RFC 4180)")
	}
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	for _, row := range rows {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Fatalf("cell %q would run as a formula", cell)
			}
		}
	}
	if !bytes.Contains(raw, []byte("'=cmd@evil.test")) || !bytes.Contains(raw, []byte("'+1@evil.test")) {
		t.Fatalf("formula cells not neutralised:\n%s", raw)
	}
}

// restore on a local database replaces its contents with a backup's, in
// one transaction; a file that is not a license database changes nothing.
func TestRestoreLocal(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_DB_PATH"] = filepath.Join(c.home, "caio.db")
	c.ok("init-db")
	c.ok("add-customer", "C1", "Before")
	backup := filepath.Join(c.home, "backup.db")
	c.ok("backup", "--output", backup)
	c.ok("add-customer", "C2", "After")
	c.fails(2, "BAD_REQUEST", "--yes", "restore", backup)
	c.ok("restore", backup, "--yes")
	if out := c.ok("list-customers").stdout; !strings.Contains(out, "C1") || strings.Contains(out, "C2") {
		t.Fatalf("after restore:\n%s", out)
	}
	junk := filepath.Join(c.home, "junk.db")
	os.WriteFile(junk, []byte("not a database"), 0o600)
	c.fails(2, "BAD_REQUEST", "not a SQLite database", "restore", junk, "--yes")
	if out := c.ok("list-customers").stdout; !strings.Contains(out, "C1") {
		t.Fatalf("a refused restore changed the database:\n%s", out)
	}
}

// A mistyped command is a usage error (exit 2) with the suggestion on a
// line of its own, and JSON under --json.
func TestUnknownCommandSuggests(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	r := c.run(nil, "stat")
	if r.code != 2 || !strings.Contains(r.stderr, "[BAD_REQUEST]") || !strings.Contains(r.stderr, "\nDid you mean this? stats\n") {
		t.Fatalf("stat: exit %d\n%s", r.code, r.stderr)
	}
	r = c.run(nil, "--json", "stat")
	var out struct {
		Code        string   `json:"code"`
		Suggestions []string `json:"suggestions"`
	}
	if r.code != 2 || json.Unmarshal([]byte(r.stderr), &out) != nil || out.Code != "BAD_REQUEST" || len(out.Suggestions) != 1 || out.Suggestions[0] != "stats" {
		t.Fatalf("--json stat: exit %d %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if r := c.ok(args...); !strings.HasPrefix(r.stdout, "manage-licenses ") || !strings.Contains(r.stdout, "go1.") {
			t.Fatalf("%v: %q", args, r.stdout)
		}
	}
}

func TestInitDBSaysCreated(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_DB_PATH"] = filepath.Join(c.home, "new", "caio.db")
	if out := c.ok("init-db").stdout; !strings.HasPrefix(out, "Database created at ") {
		t.Fatalf("init-db on a new file: %q", out)
	}
	if out := c.ok("init-db").stdout; !strings.Contains(out, "is up to date") {
		t.Fatalf("init-db again: %q", out)
	}
}

// A wrong secret's error names where that secret came from.
func TestWrongSecretNamesItsSource(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	wrong := filepath.Join(c.home, "wrong")
	os.WriteFile(wrong, []byte("an-entirely-different-secret-0123456789\n"), 0o600)
	c.fails(1, "SECRET_MISMATCH", "from --secret-file "+wrong, "generate-license", "CUST-001", "standard", "--secret-file", wrong)
	c.env["CAIO_LICENSE_SECRET"] = "an-entirely-different-secret-0123456789"
	c.fails(1, "SECRET_MISMATCH", "from CAIO_LICENSE_SECRET", "generate-license", "CUST-001", "standard")
}

// A numeric flag that is not a number, or out of range, is one kind of
// mistake: exit 2, naming the flag and its range.
func TestFlagRanges(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	c.fails(2, "BAD_REQUEST", "--expires-days must be a number from 1 to 36500", "generate-license", "CUST-001", "standard", "--expires-days", "abc")
	c.fails(2, "BAD_REQUEST", "--expires-days must be 1 to 36500 (got -5)", "generate-license", "CUST-001", "standard", "--expires-days", "-5")
	c.fails(2, "BAD_REQUEST", "--max-instances must be 1 to", "generate-license", "CUST-001", "standard", "--max-instances", "0")
	c.fails(2, "BAD_REQUEST", "--days must be 1 to 36500 (got 0)", "stats", "--days", "0")
}

// renewal-reminders lists by the same thresholds it sends by; --since takes days.
func TestRemindersFollowTheirThresholds(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	c.ok("generate-license", "CUST-001", "standard", "--expires-days", "10")
	if out := c.run(map[string]string{"CAIO_REMINDER_DAYS": "5,12"}, "renewal-reminders").stdout; !strings.Contains(out, "CUST-001") {
		t.Fatalf("thresholds 5,12 do not list a license 10 days from expiry:\n%s", out)
	}
	if out := c.run(map[string]string{"CAIO_REMINDER_DAYS": "5"}, "renewal-reminders").stdout; strings.Contains(out, "CUST-001") {
		t.Fatalf("threshold 5 lists a license 10 days from expiry:\n%s", out)
	}
	if out := c.ok("list-events", "--since", "7d").stdout; !strings.Contains(out, "license.created") {
		t.Fatalf("list-events --since 7d:\n%s", out)
	}
}

// The lists filter and limit, keeping their order.
func TestListFilters(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, key := c.setup()
	c.ok("add-customer", "CUST-002", "Globex")
	other := c.ok("generate-license", "CUST-002", "standard").lastLine()
	c.ok("track-activation", key, "--instance-id", "a-1")
	c.ok("track-activation", other, "--instance-id", "b-1")
	c.ok("deactivate", key, "--instance-id", "a-1")
	var lics []struct {
		Customer string `json:"customer_id"`
	}
	json.Unmarshal([]byte(c.ok("--json", "list-licenses", "--limit", "1").stdout), &lics)
	if len(lics) != 1 || lics[0].Customer != "CUST-001" {
		t.Fatalf("list-licenses --limit 1: %v", lics)
	}
	var acts []struct {
		Instance string `json:"instance_id"`
	}
	json.Unmarshal([]byte(c.ok("--json", "list-activations", "--status", "live").stdout), &acts)
	if len(acts) != 1 || acts[0].Instance != "b-1" {
		t.Fatalf("list-activations --status live: %v", acts)
	}
	json.Unmarshal([]byte(c.ok("--json", "list-activations", "--customer", "CUST-001").stdout), &acts)
	if len(acts) != 1 || acts[0].Instance != "a-1" {
		t.Fatalf("list-activations --customer CUST-001: %v", acts)
	}
	var evs []struct {
		Kind     string `json:"kind"`
		Customer string `json:"customer_id"`
	}
	json.Unmarshal([]byte(c.ok("--json", "list-events", "--kind", "activation.created", "--customer", "CUST-002").stdout), &evs)
	if len(evs) != 1 || evs[0].Kind != "activation.created" || evs[0].Customer != "CUST-002" {
		t.Fatalf("list-events --kind --customer: %v", evs)
	}
	c.fails(2, "BAD_REQUEST", "--limit must be", "list-events", "--limit", "-1")
}

// --features a b takes words up to the next flag; arguments placed after it
// are said to have been taken, with the way out.
func TestFeaturesBeforeArguments(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	c.fails(2, "BAD_REQUEST", "write --features a,b", "generate-license", "--features", "analytics", "CUST-001", "standard")
	var out struct {
		Claims struct {
			Features []string `json:"features"`
		} `json:"claims"`
	}
	json.Unmarshal([]byte(c.ok("--json", "generate-license", "--features", "analytics,audit", "CUST-001", "standard").stdout), &out)
	if strings.Join(out.Claims.Features, ",") != "analytics,audit" {
		t.Fatalf("--features a,b before the arguments: %v", out.Claims.Features)
	}
}

// show-license gives everything about one license, and its key only with
// --show-key and the secret.
func TestShowLicense(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, key := c.setup()
	c.ok("track-activation", key, "--instance-id", "i-1")
	r := c.ok("show-license", key)
	for _, want := range []string{"customer          CUST-001", "1 of 2 in use", "Keys issued", "i-1", "license.created", "activation.created"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("show-license lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, key) {
		t.Fatal("show-license printed the key without --show-key")
	}
	var d struct {
		Keys []struct {
			ID  string `json:"id"`
			Key string `json:"license_key"`
		} `json:"keys"`
	}
	json.Unmarshal([]byte(c.ok("--json", "show-license", key, "--show-key").stdout), &d)
	if len(d.Keys) != 1 || d.Keys[0].Key != key || len(d.Keys[0].ID) != 12 {
		t.Fatalf("show-license --show-key: %+v", d)
	}
	delete(c.env, "CAIO_LICENSE_SECRET")
	c.fails(1, "SECRET_REQUIRED", "secret", "show-license", key, "--show-key")
	c.fails(1, "NOT_FOUND", "", "show-license", "0123456789abcdef0123456789abcdef")
}

// update-license changes terms: the server enforces them at once for every
// key; the new key carries them for offline checks.
func TestUpdateLicense(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, key := c.setup() // max instances 2
	c.ok("track-activation", key, "--instance-id", "i-1")
	c.ok("track-activation", key, "--instance-id", "i-2")
	c.fails(1, "TOO_MANY_INSTANCES", "update-license --max-instances", "track-activation", key, "--instance-id", "i-3")
	newKey := c.ok("update-license", key, "--max-instances", "3", "--features", "analytics,sso", "--tier", "enterprise").lastLine()
	if newKey == key || !keyPattern.MatchString(newKey) {
		t.Fatalf("update-license printed %q", newKey)
	}
	c.ok("track-activation", key, "--instance-id", "i-3") // the earlier key, under the new terms online
	var v struct {
		Claims struct {
			Tier         string   `json:"tier"`
			Features     []string `json:"features"`
			MaxInstances int      `json:"max_instances"`
		} `json:"claims"`
	}
	json.Unmarshal([]byte(c.ok("--json", "verify-license", newKey).stdout), &v)
	if v.Claims.Tier != "enterprise" || strings.Join(v.Claims.Features, ",") != "analytics,sso" || v.Claims.MaxInstances != 3 {
		t.Fatalf("the new key says %+v", v.Claims)
	}
	if ev := c.ok("list-events", "--kind", "license.updated", "--wide").stdout; !strings.Contains(ev, "max-instances 3") {
		t.Fatalf("no event:\n%s", ev)
	}
	c.fails(2, "BAD_REQUEST", "nothing to change", "update-license", key)
	c.fails(2, "BAD_REQUEST", "--max-instances must be", "update-license", key, "--max-instances", "0")
	c.ok("revoke-license", key)
	c.fails(1, "REVOKED", "final", "update-license", key, "--max-instances", "4")
}

// Shell completion offers values from the database and fixed lists,
// through cobra's __complete.
func TestCompletionOffersValues(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	var lic []struct {
		ID string `json:"license_id"`
	}
	json.Unmarshal([]byte(c.ok("--json", "list-licenses").stdout), &lic)
	if len(lic) != 1 {
		t.Fatalf("licenses %v", lic)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "show-license", ""}, lic[0].ID + "\tCUST-001 standard active"},
		{[]string{"__complete", "update-customer", ""}, "CUST-001\tAcme Corp"},
		{[]string{"__complete", "generate-license", "CUST-001", ""}, "standard"},
		{[]string{"__complete", "list-licenses", "--status", ""}, "suspended"},
		{[]string{"__complete", "list-activations", "--status", ""}, "deactivated"},
		{[]string{"__complete", "list-events", "--kind", ""}, "activation.created"},
		{[]string{"__complete", "export-events", "--format", ""}, "jsonl"},
	} {
		if out := c.ok(tc.args...).stdout; !strings.Contains(out, tc.want+"\n") {
			t.Errorf("%v: %q lacks %q", tc.args, out, tc.want)
		}
	}
}

// Ctrl-C during a command (here a first generate-license, which derives
// the sealing key for about a second) is INTERRUPTED, exit 130, and leaves
// nothing half done.
//
// The interrupt is sent once the process has its database open: main
// installs the signal handler before anything else, so from then on the
// signal reaches the command, however slow a loaded machine makes its
// start. A sleep here once raced the handler and the process died of the
// signal.
func TestInterruptedCommand(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to see when the command has opened its database")
	}
	for attempt := 0; attempt < 3; attempt++ {
		c := newCLI(t)
		c.env["CAIO_LICENSE_SECRET"] = testSecret
		c.ok("add-customer", "CUST-001", "Acme Corp")
		db := filepath.Join(c.home, ".caio", "caio_licenses.db")
		cmd := exec.Command(binary, "generate-license", "CUST-001", "standard")
		cmd.Env = []string{"HOME=" + c.home, "CAIO_LICENSE_SECRET=" + testSecret}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		select {
		case err = <-exited:
			t.Fatalf("generate-license ended before it opened the database: %v %q", err, stderr.String())
		case <-waitOpen(cmd.Process.Pid, db):
			cmd.Process.Signal(os.Interrupt)
			err = <-exited
		}
		if err == nil {
			continue // it committed before the signal arrived: try again
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 || strings.TrimSpace(stderr.String()) != "error [INTERRUPTED]: interrupted before the command finished; a change it had not committed was not made" {
			t.Fatalf("exit %d: %q", code, stderr.String())
		}
		if out := c.ok("--json", "list-licenses").stdout; strings.TrimSpace(out) != "[]" {
			t.Fatalf("an interrupted generate-license left a license: %s", out)
		}
		return
	}
	t.Fatal("generate-license finished before every interrupt")
}

// waitOpen closes its channel once process pid holds path open, polling
// its /proc fd table until then; it gives up when the process is gone.
func waitOpen(pid int, path string) <-chan struct{} {
	open := make(chan struct{})
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	go func() {
		for {
			fds, err := os.ReadDir(dir)
			if err != nil {
				return
			}
			for _, fd := range fds {
				if target, _ := os.Readlink(filepath.Join(dir, fd.Name())); target == path {
					close(open)
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return open
}
