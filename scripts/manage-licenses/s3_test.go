package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// s3CLI is a CLI environment in S3 mode against srv.
func s3CLI(t *testing.T, srv *s3test.Server) *cli {
	c := execCLI(t)
	for k, v := range srv.Env("prod/caio_licenses.db") {
		c.env[k] = v
	}
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.env["CAIO_LICENSE_CACHE_DIR"] = t.TempDir() // shared by every process, as on one host
	return c
}

// parallel runs n workers, each doing its calls one after another in
// separate processes, and returns the exit codes by call name.
func parallel(c *cli, workers, each int, args func(w, i int) []string) map[string]result {
	var mu sync.Mutex
	out := map[string]result{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				a := args(w, i)
				r := c.run(nil, a...)
				mu.Lock()
				out[strings.Join(a, " ")] = r
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

func seatsUnderContention(t *testing.T, srv *s3test.Server) {
	c := s3CLI(t, srv)
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")
	key := c.ok("generate-license", "CUST-001", "standard", "--max-instances", "5").lastLine()
	results := parallel(c, 4, 10, func(w, i int) []string {
		return []string{"track-activation", key, "--instance-id", fmt.Sprintf("w%d-i%d", w, i)}
	})
	won := 0
	for call, r := range results {
		switch {
		case r.code == 0:
			won++
		case !strings.Contains(r.stderr, "TOO_MANY_INSTANCES"):
			t.Errorf("%s: %s", call, r.stderr)
		}
	}
	acts := c.ok("--json", "list-activations").stdout
	if won != 5 || strings.Count(acts, `"instance_id"`) != 5 {
		t.Fatalf("%d activations succeeded, %d stored; want exactly 5", won, strings.Count(acts, `"instance_id"`))
	}
	for call, r := range results {
		instance := strings.Fields(call)[3]
		if (r.code == 0) != strings.Contains(acts, `"`+instance+`"`) {
			t.Errorf("%s: exit %d, but stored=%v", call, r.code, !(r.code == 0))
		}
	}
}

func TestS3SeatsUnderContention(t *testing.T) { seatsUnderContention(t, s3test.StartGofakes3(t)) }

func TestS3SeatsUnderContentionVersitygw(t *testing.T) {
	seatsUnderContention(t, s3test.StartVersity(t))
}

func TestS3NoLostUpdate(t *testing.T) {
	c := s3CLI(t, s3test.StartGofakes3(t))
	c.ok("init-db")
	results := parallel(c, 4, 5, func(w, i int) []string {
		return []string{"add-customer", fmt.Sprintf("C-%d-%d", w, i), "Customer"}
	})
	for call, r := range results {
		if r.code != 0 {
			t.Errorf("%s: %s", call, r.stderr)
		}
	}
	if n := strings.Count(c.ok("--json", "list-customers").stdout, `"id"`); n != 20 {
		t.Fatalf("%d customers, want 20", n)
	}
}

// A process killed in the middle of a write leaves a valid database, and
// the next write succeeds.
func TestS3CrashMidWrite(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	proxy := s3test.NewProxy(t, srv)
	c := s3CLI(t, proxy.Server)
	c.ok("init-db")
	c.ok("add-customer", "C1", "Before the crash")
	putStarted := make(chan struct{}, 1)
	var hold sync.Once
	proxy.Decide = func(r *http.Request) s3test.Fault {
		if r.Method != http.MethodPut {
			return s3test.Pass
		}
		f := s3test.Pass
		hold.Do(func() { f = s3test.HoldForever; putStarted <- struct{}{} })
		return f
	}
	cmd := exec.Command(binary, "add-customer", "C2", "Killed mid-write")
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH")}
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-putStarted:
	case <-time.After(30 * time.Second):
		t.Fatal("the write never reached S3")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	proxy.Decide = nil

	if sqlite3, err := exec.LookPath("sqlite3"); err == nil {
		// The published state, rebuilt from S3 by a process with an empty
		// cache, and the snapshot object as it is, both pass.
		rebuilt := filepath.Join(t.TempDir(), "after-crash.db")
		c.run(map[string]string{"CAIO_LICENSE_CACHE_DIR": t.TempDir()}, "backup", "--output", rebuilt)
		snapshot := filepath.Join(t.TempDir(), "snapshot.db")
		os.WriteFile(snapshot, srv.Object(t, "prod/caio_licenses.db"), 0o600)
		for _, path := range []string{rebuilt, snapshot} {
			out, err := exec.Command(sqlite3, path, "PRAGMA integrity_check").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Fatalf("after the crash, %s: %v %s", filepath.Base(path), err, out)
			}
		}
	} else if os.Getenv("CAIO_REQUIRE_TEST_TOOLS") != "" {
		t.Fatal("sqlite3 not installed")
	}
	c.ok("add-customer", "C3", "After the crash")
	out := c.ok("list-customers").stdout
	if !strings.Contains(out, "C1") || !strings.Contains(out, "C3") || strings.Contains(out, "C2") {
		t.Fatalf("customers after the crash:\n%s", out)
	}
}

func TestS3CommandsAndBackup(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	c := s3CLI(t, srv)
	c.fails(1, "DB_NOT_FOUND", "init-db", "stats")
	r := c.ok("init-db")
	if !strings.Contains(r.stdout, "s3://licenses/prod/caio_licenses.db") {
		t.Fatalf("init-db: %s", r.stdout)
	}
	c.ok("add-customer", "CUST-001", "Acme Corp")
	key := c.ok("generate-license", "CUST-001", "standard").lastLine()
	c.ok("track-activation", key, "--instance-id", "i-1")
	backup := filepath.Join(c.home, "backup.db")
	c.ok("backup", "--output", backup)
	// The backup is a working local database.
	c.env["CAIO_LICENSE_DB_PATH"] = backup
	if out := c.ok("list-activations").stdout; !strings.Contains(out, "i-1") {
		t.Fatalf("backup lacks the activation:\n%s", out)
	}
	for uri, says := range map[string]string{"s3://x": "s3://BUCKET/", "s3://no-such-bucket/db": "does not exist"} {
		c.env["CAIO_LICENSE_DB_PATH"] = uri
		c.fails(1, "CONFIG", says, "stats")
	}
}

// backup --at writes a past state; restore --yes publishes it as the
// current one, and every process (with its own cache) sees it.
func TestS3BackupAtAndRestore(t *testing.T) {
	srv := s3test.StartVersity(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	c.ok("add-customer", "C1", "Before")
	time.Sleep(1100 * time.Millisecond) // S3 times are whole seconds
	then := time.Now().UTC().Format(time.RFC3339)
	time.Sleep(1100 * time.Millisecond)
	c.ok("add-customer", "C2", "After")
	past := filepath.Join(c.home, "past.db")
	c.ok("backup", "--output", past, "--at", then)
	local := *c
	local.env = map[string]string{"CAIO_LICENSE_DB_PATH": past}
	if out := local.ok("list-customers").stdout; !strings.Contains(out, "C1") || strings.Contains(out, "C2") {
		t.Fatalf("the database at %s:\n%s", then, out)
	}
	c.fails(2, "BAD_REQUEST", "--yes", "restore", past)
	c.fails(2, "BAD_REQUEST", "RFC 3339", "backup", "--output", filepath.Join(c.home, "x.db"), "--at", "yesterday")
	c.ok("restore", past, "--yes")
	other := map[string]string{"CAIO_LICENSE_CACHE_DIR": t.TempDir()}
	if r := c.run(other, "list-customers"); r.code != 0 || !strings.Contains(r.stdout, "C1") || strings.Contains(r.stdout, "C2") {
		t.Fatalf("after restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.ok("add-customer", "C3", "After the restore")
	if out := c.ok("list-customers").stdout; !strings.Contains(out, "C3") || strings.Contains(out, "C2") {
		t.Fatalf("after restore and a write:\n%s", out)
	}
	if out := c.ok("maintain").stdout; !strings.Contains(out, "S3 history") {
		t.Fatalf("maintain does not report the S3 history:\n%s", out)
	}
}

// rotate-secret in S3 mode: one conditional write re-seals everything; a
// writer with the old secret afterwards is refused, not silently re-keyed.
func TestS3RotateSecret(t *testing.T) {
	srv := s3test.StartVersity(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")
	key := c.ok("generate-license", "CUST-001", "standard").lastLine()
	pub := c.ok("public-key").lastLine()
	newSecret := c.ok("new-secret").lastLine()
	r := c.run(map[string]string{"CAIO_NEW_LICENSE_SECRET": newSecret}, "rotate-secret")
	if r.code != 0 || !strings.Contains(r.stdout, "1 signing keys and 1 license keys") {
		t.Fatalf("rotate-secret: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	c.fails(1, "SECRET_MISMATCH", "does not match", "generate-license", "CUST-001", "standard")
	c.env["CAIO_LICENSE_SECRET"] = newSecret
	if got := c.ok("public-key").lastLine(); got != pub {
		t.Fatalf("public key changed: %s, was %s", got, pub)
	}
	c.ok("track-activation", key, "--instance-id", "i-1")
	c.ok("generate-license", "CUST-001", "standard")
}

// The churn limit holds exactly across processes: four of them race to
// take new seats on a license that allows 6 a day.
func TestChurnLimitAcrossProcesses(t *testing.T) {
	c := execCLI(t)
	c.setup()
	key := c.ok("generate-license", "CUST-001", "standard", "--max-instances", "50", "--max-activations-per-day", "6").lastLine()
	results := parallel(c, 4, 4, func(w, i int) []string {
		return []string{"track-activation", key, "--instance-id", fmt.Sprintf("w%d-%d", w, i)}
	})
	won := 0
	for args, r := range results {
		switch {
		case r.code == 0:
			won++
		case !strings.Contains(r.stderr, "[TOO_MANY_ACTIVATIONS]"):
			t.Fatalf("%s: exit %d %s", args, r.code, r.stderr)
		}
	}
	if won != 6 {
		t.Fatalf("%d new seats, want exactly 6", won)
	}
}

// An operator's view of a cut log, with real processes: every command
// refuses it, naming the gap and the repair; repair where the newest copy
// is (this host's cache) brings everyone back, with nothing lost.
func TestS3GapAndRepair(t *testing.T) {
	srv := s3test.StartVersity(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	for _, id := range []string{"C1", "C2", "C3"} {
		c.ok("add-customer", id, "Customer "+id)
	}
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3test.Bucket), Prefix: aws.String("prod/caio_licenses.db.log/")})
	if err != nil || len(out.Contents) < 3 {
		t.Fatalf("deltas: %v", err)
	}
	middle := aws.ToString(out.Contents[len(out.Contents)-2].Key)
	if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(s3test.Bucket), Key: aws.String(middle)}); err != nil {
		t.Fatal(err)
	}
	elsewhere := s3CLI(t, srv) // another host: a cache of its own
	elsewhere.fails(1, "DB_INVALID", "manage-licenses repair", "list-customers")
	elsewhere.fails(1, "DB_INVALID", "is missing while delta", "add-customer", "C4", "Customer C4")
	r := c.ok("repair")
	if !strings.Contains(r.stdout, "Repaired") || strings.Contains(r.stderr, "lost") {
		t.Fatalf("repair on the host that wrote the log:\n%s%s", r.stdout, r.stderr)
	}
	if got := elsewhere.ok("list-customers").stdout; !strings.Contains(got, "C1") || !strings.Contains(got, "C2") || !strings.Contains(got, "C3") {
		t.Fatalf("after the repair, elsewhere:\n%s", got)
	}
	elsewhere.ok("add-customer", "C4", "Customer C4")
	if r := c.ok("repair"); !strings.Contains(r.stdout, "nothing to repair") {
		t.Fatalf("a second repair:\n%s", r.stdout)
	}
	// A local database has no log to repair.
	local := newCLI(t)
	local.ok("init-db")
	local.fails(2, "BAD_REQUEST", "a local file", "repair")
}

// The CLI reads the AWS credentials operators keep in profiles (the SDK's
// whole chain, which the functions do not link): a named profile in the
// shared credentials file reaches S3, and without it the command fails in
// one line that says what to set, changing nothing.
func TestCLIReadsAWSProfiles(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	c := s3CLI(t, srv)
	delete(c.env, "AWS_ACCESS_KEY_ID")
	delete(c.env, "AWS_SECRET_ACCESS_KEY")
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	profile := fmt.Sprintf("[licensing]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(creds, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["AWS_SHARED_CREDENTIALS_FILE"], c.env["AWS_CONFIG_FILE"] = creds, filepath.Join(dir, "config")
	c.env["AWS_PROFILE"] = "licensing"
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")
	if out := c.ok("list-customers").stdout; !strings.Contains(out, "CUST-001") {
		t.Fatalf("list-customers: %s", out)
	}
	delete(c.env, "AWS_PROFILE")
	r := c.run(nil, "add-customer", "CUST-002", "Other Corp")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "credentials") {
		t.Fatalf("no profile: exit %d\n%s", r.code, r.stderr)
	}
	c.env["AWS_PROFILE"] = "licensing"
	if out := c.ok("list-customers").stdout; strings.Contains(out, "CUST-002") {
		t.Fatalf("a failed command changed the database: %s", out)
	}
}

// Credentials that S3 rejects name where they came from: a profile is
// not fixed by AWS_ACCESS_KEY_ID, which is not even set.
func TestRejectedProfileNamesTheProfile(t *testing.T) {
	srv := s3test.StartVersity(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	delete(c.env, "AWS_ACCESS_KEY_ID")
	delete(c.env, "AWS_SECRET_ACCESS_KEY")
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("[stale]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = not-the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["AWS_SHARED_CREDENTIALS_FILE"], c.env["AWS_CONFIG_FILE"], c.env["AWS_PROFILE"] = creds, filepath.Join(dir, "config"), "stale"
	c.fails(1, "CONFIG", "AWS credentials rejected", "stats")
	c.fails(1, "CONFIG", "the profile AWS_PROFILE names (stale)", "stats")
	c.env["AWS_PROFILE"] = "nosuch"
	c.fails(1, "CONFIG", "check AWS_PROFILE and the shared config and credentials files", "stats")
}

// Without credentials, in S3 mode, the error is the one line the guide
// promises (one JSON object under --json): the SDK's chain, which looks
// for them as far as the instance metadata service, writes nothing of its
// own (it warned of falling back to IMDSv1).
func TestNoAWSCredentialsIsOneLine(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	c := s3CLI(t, srv)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"} {
		delete(c.env, k)
	}
	dir := t.TempDir()
	c.env["AWS_SHARED_CREDENTIALS_FILE"], c.env["AWS_CONFIG_FILE"] = filepath.Join(dir, "credentials"), filepath.Join(dir, "config")
	for _, args := range [][]string{{"stats"}, {"--json", "stats"}} {
		r := c.run(nil, args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 1 || len(lines) != 1 || !strings.Contains(r.stderr, "credentials") {
			t.Fatalf("%v: exit %d, %d lines:\n%s", args, r.code, len(lines), r.stderr)
		}
	}
}

// An S3 endpoint that is wrong says what is wrong with it: one that is not
// a URL is refused as such (CONFIG), and one where nothing answers names
// the endpoint and the refused connection (still BUSY: a server that is
// down comes back), reads and writes alike, changing nothing.
func TestWrongS3Endpoint(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	c.env["AWS_ENDPOINT_URL_S3"] = "127.0.0.1:7070"
	c.fails(1, "CONFIG", `AWS_ENDPOINT_URL_S3="127.0.0.1:7070" is not an S3 endpoint: write http://HOST:PORT`, "stats")
	closed := "http://" + testtools.FreeAddr(t)
	c.env["AWS_ENDPOINT_URL_S3"] = closed
	for _, args := range [][]string{{"stats"}, {"add-customer", "CUST-9", "Nine"}} {
		c.fails(1, "BUSY", "connection refused, the endpoint AWS_ENDPOINT_URL_S3 gives ("+closed+")", args...)
	}
	c.env["AWS_ENDPOINT_URL_S3"] = srv.URL
	if out := c.ok("list-customers").stdout; strings.Contains(out, "CUST-9") {
		t.Fatalf("a failed write was applied: %s", out)
	}
}
