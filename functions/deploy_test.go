package functions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/caio-licensing/caio-licensing/shared/awssecret/smtest"
	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// samStandIn stands for the SAM CLI, a Python program that cannot be
// installed here (nor can CloudFormation run): it records its calls, and
// its deploy records the LicensePublicKey it was given, for the gateway.
const samStandIn = `#!/usr/bin/env bash
state=%q
printf '%%s\n' "$*" >>"$state/calls"
case "$1" in
build) ;;
deploy)
	printf '' >"$state/public-key"
	for a in "$@"; do
		case "$a" in LicensePublicKey=*) printf '%%s' "${a#LicensePublicKey=}" >"$state/public-key" ;; esac
	done
	touch "$state/deployed" ;;
list)
	[ -e "$state/deployed" ] || { echo "Error: The input stack $4 does not exist on Cloudformation" >&2; exit 1; }
	cat "$state/outputs.json" ;;
*) echo "sam stand-in: unexpected $*" >&2; exit 2 ;;
esac
`

// gateway stands for API Gateway's HTTP API in front of the activate
// function: each request becomes a payload 2.0 event for the function
// under the Runtime Interface Emulator, started with the environment the
// template gives it and restarted when a deploy pins another public key.
type gateway struct {
	t      *testing.T
	env    map[string]string
	state  string
	mu     sync.Mutex
	key    string
	fn     *emulator
	health []int // statuses of GET /healthz
	forge  bool  // answer license calls itself, unsigned: a hostile endpoint
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key, _ := os.ReadFile(filepath.Join(g.state, "public-key"))
	if g.fn == nil || string(key) != g.key {
		if g.fn != nil {
			g.fn.stop()
		}
		env := map[string]string{"CAIO_LICENSE_PUBLIC_KEY": string(key)}
		for k, v := range g.env {
			env[k] = v
		}
		g.key, g.fn = string(key), startEmulator(g.t, bootstrap(g.t, "activate"), env)
	}
	body, _ := io.ReadAll(r.Body)
	if g.forge && r.URL.Path != contract.PathHealth {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"valid":true,"code":"VALID","detail":"instance activated (1 of 1 seats in use)"}`)
		return
	}
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: r.Method + " " + r.URL.Path, RawPath: r.URL.Path,
		Headers: map[string]string{}, Body: string(body)}
	for k := range r.Header {
		ev.Headers[strings.ToLower(k)] = r.Header.Get(k)
	}
	ev.RequestContext.RequestID = "deploy-test"
	ev.RequestContext.HTTP = events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path, SourceIP: "127.0.0.1"}
	raw, _ := json.Marshal(ev)
	resp, err := http.Post(g.fn.url, "application/json", bytes.NewReader(raw))
	var out events.APIGatewayV2HTTPResponse
	if err == nil {
		defer resp.Body.Close()
		err = json.NewDecoder(resp.Body).Decode(&out)
	}
	if err != nil || out.StatusCode == 0 { // the function failed: API Gateway says 500
		out = events.APIGatewayV2HTTPResponse{StatusCode: 500, Body: `{"message":"Internal Server Error"}`}
	}
	if r.URL.Path == contract.PathHealth {
		g.health = append(g.health, out.StatusCode)
	}
	for k, v := range out.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(out.StatusCode)
	io.WriteString(w, out.Body)
}

// scripts/deploy.sh from zero and again, against what runs here: versitygw
// for the bucket, kumo for Secrets Manager, the activate function under the
// emulator behind the gateway. The stack's resources are made as the
// template makes them: a bucket, a generated signing secret, an empty
// server key secret.
func TestDeployScript(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("jq is not installed: run 'make deps'")
	}
	s3 := s3test.StartVersity(t)
	sm := smtest.Start(t)
	secretARN := sm.Create(t, "caio-test/LicenseSecret", "Q7mZp3RkT9vXw2LcN8bYh4JdF6sGa1UeK5oVi0PrMt7nBq2W") // 48 letters and digits, as GenerateSecretString
	serverARN := sm.Create(t, "caio-test/ServerKeySecret", "")
	state, home := t.TempDir(), t.TempDir()
	env := map[string]string{"CAIO_LICENSE_DB_PATH": "s3://" + s3test.Bucket + "/caio_licenses.db",
		"CAIO_SERVER_KEY_ARN": serverARN, "CAIO_LICENSE_CACHE_DIR": t.TempDir()}
	for k, v := range sm.Env() {
		env[k] = v
	}
	for k, v := range s3.Env("caio_licenses.db") { // versitygw's keys; kumo takes any
		env[k] = v
	}
	gw := &gateway{t: t, env: env, state: state}
	api := httptest.NewServer(gw)
	t.Cleanup(api.Close)
	outputs, _ := json.Marshal([]map[string]string{
		{"OutputKey": "ApiUrl", "OutputValue": api.URL},
		{"OutputKey": "DatabaseBucketName", "OutputValue": s3test.Bucket},
		{"OutputKey": "LicenseSecretArn", "OutputValue": secretARN},
		{"OutputKey": "ServerKeySecretArn", "OutputValue": serverARN},
	})
	os.WriteFile(filepath.Join(state, "outputs.json"), outputs, 0o644)
	sam := filepath.Join(t.TempDir(), "sam")
	if err := os.WriteFile(sam, []byte(fmt.Sprintf(samStandIn, state)), 0o755); err != nil {
		t.Fatal(err)
	}

	deploy := func(extra ...string) (string, string, int) {
		// As docs/deployment.md prints it: the script itself, not bash.
		cmd := exec.Command("./scripts/deploy.sh", append([]string{"--stack-name", "caio-test"}, extra...)...)
		cmd.Dir = repoRoot(t)
		cmd.Env = []string{"HOME=" + home, "PATH=" + filepath.Dir(sam) + ":" + os.Getenv("PATH"), "GOCACHE=" + goEnv(t, "GOCACHE"), "GOPATH=" + goEnv(t, "GOPATH")}
		for k, v := range env {
			if k != "CAIO_LICENSE_DB_PATH" && k != "CAIO_SERVER_KEY_ARN" { // the script finds these itself
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	calls := func() []string {
		b, _ := os.ReadFile(filepath.Join(state, "calls"))
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	cli := filepath.Join(repoRoot(t), "bin", "manage-licenses")
	run := func(args ...string) string {
		cmd := exec.Command(cli, args...)
		cmd.Env = []string{"HOME=" + home, "CAIO_LICENSE_SECRET_ARN=" + secretARN}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("manage-licenses %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// From zero.
	stdout, stderr, code := deploy("--region", "us-east-1")
	if code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	pub := run("public-key")
	t.Logf("first run:\n%s%s", stdout, stderr)
	want := []string{"build", "list stack-outputs", "deploy", "list stack-outputs", "deploy"}
	got := calls()
	if len(got) != len(want) {
		t.Fatalf("sam calls %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("sam call %d: %q, want %s", i, got[i], want[i])
		}
		// SAM reads AWS_DEFAULT_REGION or the profile, not AWS_REGION:
		// it is told the region the CLI steps use.
		if want[i] != "build" && !strings.Contains(got[i], "--region us-east-1") {
			t.Fatalf("sam call %d: %q, without --region us-east-1", i, got[i])
		}
	}
	if !strings.Contains(got[2], "LicensePublicKey= ") && !strings.HasSuffix(got[2], "LicensePublicKey=") || !strings.Contains(got[4], "LicensePublicKey="+pub) {
		t.Fatalf("deploys: %q then %q; want no key, then %s", got[2], got[4], pub)
	}
	if !strings.Contains(stdout, "Public key: "+pub) || !strings.Contains(stdout, "stored in "+serverARN) {
		t.Fatalf("first run output:\n%s", stdout)
	}
	stored := sm.Value(t, serverARN)
	if stored == "" || strings.Contains(stdout+stderr, stored) || strings.Contains(stdout+stderr, "Q7mZp3RkT9") {
		t.Fatalf("server key stored: %v; a secret printed:\n%s\n%s", stored != "", stdout, stderr)
	}
	if len(gw.health) == 0 || gw.health[len(gw.health)-1] != 200 {
		t.Fatalf("healthz through the gateway: %v", gw.health)
	}
	smokeLicenses := func() (statuses []string) {
		var list []struct{ Status string }
		if err := json.Unmarshal([]byte(run("--json", "list-licenses", "--customer", "DEPLOY-SMOKE")), &list); err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			statuses = append(statuses, l.Status)
		}
		return statuses
	}
	if s := smokeLicenses(); len(s) != 1 || s[0] != "revoked" {
		t.Fatalf("smoke licenses %v, want one, revoked", s)
	}
	if acts := run("--json", "list-activations"); !strings.Contains(acts, "deploy-smoke-") {
		t.Fatalf("the smoke activation went through no API: %s", acts)
	}

	// Again: the stack and the good server key are kept, one deploy.
	stdout, stderr, code = deploy()
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	again := calls()[len(want):]
	if len(again) != 3 || !strings.HasPrefix(again[2], "deploy") || !strings.Contains(again[2], "LicensePublicKey="+pub) {
		t.Fatalf("second run's sam calls: %q", again)
	}
	if !strings.Contains(stdout, "kept") || sm.Value(t, serverARN) != stored || run("public-key") != pub {
		t.Fatalf("second run changed the server key or public key:\n%s", stdout)
	}
	if s := smokeLicenses(); len(s) != 2 || s[0] != "revoked" || s[1] != "revoked" {
		t.Fatalf("smoke licenses after two runs: %v", s)
	}

	// An endpoint that answers "valid" without our signature fails the
	// smoke test, and the throwaway license is revoked all the same.
	gw.mu.Lock()
	gw.forge = true
	gw.mu.Unlock()
	stdout, stderr, code = deploy()
	if code != 1 || !strings.Contains(stderr, "deploy: the API did not activate a fresh license with answers signed for the pinned key") {
		t.Fatalf("forged answers: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if s := smokeLicenses(); len(s) != 3 || s[2] != "revoked" {
		t.Fatalf("smoke licenses after a failed smoke test: %v", s)
	}

	// A missing tool stops it before anything happens.
	n := len(calls())
	cmd := exec.Command("./scripts/deploy.sh")
	cmd.Dir = repoRoot(t)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "SAM=sam-not-installed", "AWS_REGION=us-east-1"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.HasPrefix(string(out), "deploy: needs sam-not-installed: install the AWS SAM CLI") || len(calls()) != n {
		t.Fatalf("without sam: %v %q", err, out)
	}
}

func goEnv(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// The activate function holds no signing secret and trusts no key from the
// database: without a pinned public key it refuses to start, and the API
// answers 500 until deploy.sh pins one.
func TestActivateRefusesToStartWithoutPublicKey(t *testing.T) {
	_, env := newDB(t)
	delete(env, "CAIO_LICENSE_PUBLIC_KEY")
	e := startEmulator(t, bootstrap(t, "activate"), env)
	status, body := e.invoke(t, sample(t, "activate", "http-api-validate", "CAIO-v1-CUST-001-x"))
	var resp events.APIGatewayV2HTTPResponse
	if json.Unmarshal(body, &resp) == nil && resp.StatusCode != 0 || !e.waitLogs("CAIO_LICENSE_PUBLIC_KEY is not set") {
		t.Fatalf("answer %d %s\nlogs:\n%s", status, body, e.logs.String())
	}
}

// Every shell script parses, passes shellcheck, and is committed
// executable: the docs tell people to run ./scripts/x.sh, which a mode of
// 644 answers with "Permission denied".
func TestShellScripts(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed: run 'make deps'")
	}
	for _, script := range []string{"scripts/deploy.sh", "scripts/local-aws.sh", ".ci/run"} {
		path := filepath.Join(repoRoot(t), script)
		cmd := exec.Command("git", "ls-files", "-s", script)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.Output(); err == nil && !strings.HasPrefix(string(out), "100755 ") {
			t.Errorf("%s is committed as %q: want mode 100755 (git update-index --chmod=+x %s)", script, strings.Fields(string(out) + " ?")[0], script)
		}
		if info, err := os.Stat(path); err != nil || info.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable here: %v", script, err)
		}
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", script, err, out)
		}
		if out, err := exec.Command("shellcheck", path).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", script, err, out)
		}
	}
}
