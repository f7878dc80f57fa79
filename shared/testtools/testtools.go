// Package testtools finds the test servers that `make test-tools` builds
// from pinned versions into the git-ignored .cache/.
package testtools

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Dir is where the tools are: $CAIO_TEST_TOOLS, else .cache/bin at the
// module root.
func Dir() string {
	if dir := os.Getenv("CAIO_TEST_TOOLS"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "bin")
		}
	}
	return ""
}

// Path returns the path of a tool under Dir. A missing tool skips the
// test, or fails it under CAIO_REQUIRE_TEST_TOOLS (as make test sets).
func Path(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(), name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CAIO_REQUIRE_TEST_TOOLS") != "" {
			t.Fatalf("%s not found at %s: run 'make test-tools'", name, p)
		}
		t.Skipf("%s not installed (run 'make test-tools')", name)
	}
	return p
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a server the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// RunWithBinaries builds the commands (package directory → binary name)
// into a temporary directory, runs the tests with their paths, removes
// them, and exits: a TestMain for tests that drive the real binaries.
func RunWithBinaries(m *testing.M, pkgs map[string]string, paths func(map[string]string)) {
	dir, err := os.MkdirTemp("", "caio-binaries")
	if err != nil {
		panic(err)
	}
	built := map[string]string{}
	for pkg, name := range pkgs {
		built[name] = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", built[name], pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	paths(built)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Start runs cmd, a server that will listen on addr, stops it when the
// test ends, and waits until addr accepts connections (failing the test
// with the server's output if it never does).
func Start(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	WaitListening(t, addr, &logs)
}

// WaitListening waits up to about 30 s for addr to accept connections.
func WaitListening(t testing.TB, addr string, logs *bytes.Buffer) {
	t.Helper()
	for i := 0; ; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if i > 300 {
			t.Fatalf("server on %s did not start:\n%s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
