package functions_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// The functions are built by the same make targets that `sam build` runs,
// then run under the real Lambda Runtime Interface Emulator.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

var functionIDs = map[string]string{
	"generate": "GenerateFunction", "distribute": "DistributeFunction", "activate": "ActivateFunction",
	"stats": "StatsFunction", "reminders": "RemindersFunction",
}

func repoRoot(t testing.TB) string {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func makeTarget(t testing.TB, target, artifacts, goarch string) {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", target, "ARTIFACTS_DIR="+artifacts)
	cmd.Dir = repoRoot(t)
	cmd.Env = os.Environ()
	if goarch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+goarch)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
}

// bootstrap returns the amd64 bootstrap of a function, built once per run.
func bootstrap(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "caio-functions")
		if buildErr != nil {
			return
		}
		for fn, id := range functionIDs {
			makeTarget(t, "build-"+id, filepath.Join(buildDir, fn), "amd64")
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
			"-o", filepath.Join(buildDir, "baseline", "bootstrap"), "./scripts/coldstart-baseline")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the baseline: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name, "bootstrap")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func TestBuildTargetsMakeArm64Bootstraps(t *testing.T) {
	for fn, id := range functionIDs {
		t.Run(id, func(t *testing.T) {
			dir := t.TempDir()
			makeTarget(t, "build-"+id, dir, "")
			f, err := elf.Open(filepath.Join(dir, "bootstrap"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
				t.Fatalf("%s bootstrap is %v %v, want 64-bit arm64", fn, f.Class, f.Machine)
			}
			if f.Section(".interp") != nil {
				t.Fatalf("%s bootstrap is dynamically linked (cgo?)", fn)
			}
		})
	}
}

// emulatorPath finds aws-lambda-rie as installed by `make test-tools`.
func emulatorPath(t testing.TB) string { return testtools.Path(t, "aws-lambda-rie") }

// emulator is one function running under the Runtime Interface Emulator.
type emulator struct {
	url     string
	cmd     *exec.Cmd
	logs    *syncBuffer
	started time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startEmulator runs bootstrap under the emulator on loopback with exactly env.
func startEmulator(t testing.TB, bootstrap string, env map[string]string) *emulator {
	t.Helper()
	addr, api := testtools.FreeAddr(t), testtools.FreeAddr(t)
	cmd := exec.Command(emulatorPath(t), "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, bootstrap)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_REGION=us-east-1", "TZ=UTC"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	e := &emulator{url: "http://" + addr + "/2015-03-31/functions/function/invocations", cmd: cmd, logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	e.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	// Polled every millisecond: BenchmarkColdStart times from the start,
	// and a coarser poll would add its wait to both functions it compares.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator did not listen on %s:\n%s", addr, e.logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	return e
}

// waitLogs waits (up to 5 s) until the emulator's output holds every
// want: the function's output may arrive after the invocation's answer.
func (e *emulator) waitLogs(want ...string) bool {
	for range 250 {
		logs, all := e.logs.String(), true
		for _, w := range want {
			all = all && strings.Contains(logs, w)
		}
		if all {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (e *emulator) stop() {
	if e.cmd.Process != nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
	}
}

// invoke sends one event and returns the emulator's HTTP status and body.
func (e *emulator) invoke(t testing.TB, event []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(e.url, "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, e.logs.String())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// invokeJSON invokes and decodes a successful result into out; it fails
// the test on a function error.
func (e *emulator) invokeJSON(t testing.TB, event []byte, out any) {
	t.Helper()
	status, body := e.invoke(t, event)
	if status != 200 || bytes.Contains(body, []byte(`"errorType"`)) {
		t.Fatalf("invocation failed: %d %s\nlogs:\n%s", status, body, e.logs.String())
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("result is not JSON: %s", body)
	}
}

// sample reads infra/events/<fn>/<name>.json, with the placeholder key replaced.
func sample(t testing.TB, fn, name, key string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "events", fn, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(raw, []byte("CAIO-v1-CUST-001-..."), []byte(key))
}

func samples(t testing.TB, fn string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "infra", "events", fn, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples for %s", fn)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return names
}
