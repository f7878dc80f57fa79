package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/awssecret/smtest"
	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// exampleOrder is the order an operator's day takes the commands in, so
// that each example finds what it needs ($KEY from generate-license, a
// seat to deactivate, the secret rotated last). A new command must be
// placed here.
var exampleOrder = []string{
	"init-db", "add-customer", "update-customer", "list-customers",
	"generate-license", "verify-license", "public-key", "show-license", "list-licenses",
	"update-license", "renew-license", "distribute-license", "resend-license",
	"track-activation", "list-activations", "deactivate", "issue-offline-lease",
	"certify-server-key", "rotate-server-key", "serve", "stats", "report", "renewal-reminders",
	"list-events", "list-deliveries", "export-events", "export-licenses",
	"suspend-license", "reinstate-license", "revoke-license",
	"maintain", "vacuum", "backup", "restore", "repair", "rotate-secret", "new-secret", "version",
}

// cannotRunHere lists the examples that need what a test machine lacks,
// with the reason. Every other example runs, and each command has at
// least one that does.
var cannotRunHere = map[string]string{
	"manage-licenses backup --output before-incident.db --at 2026-11-28T09:00:00Z":                       "needs an S3 database with history from that time",
	"manage-licenses serve --addr 0.0.0.0:8443 --tls-cert /etc/caio/tls.crt --tls-key /etc/caio/tls.key": "needs a certificate in /etc/caio (TestServeTLSReload covers TLS)",
	"manage-licenses serve --addr 10.0.0.5:3000 --trusted-proxies 10.0.0.0/24":                           "needs the address 10.0.0.5 (TestServeTrustedProxies covers proxies)",
}

// examples reads the Examples section of a command's help.
func examples(t *testing.T, cmd string) []string {
	out, err := exec.Command(binary, cmd, "--help").Output()
	if err != nil {
		t.Fatalf("%s --help: %v", cmd, err)
	}
	_, section, ok := strings.Cut(string(out), "\nExamples:\n")
	if !ok {
		t.Errorf("%s --help has no Examples section", cmd)
		return nil
	}
	section, _, _ = strings.Cut(section, "\n\n")
	var lines []string
	for _, l := range strings.Split(section, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

var serveRE = regexp.MustCompile(`^manage-licenses serve\b`)

// Every example in every command's help works as printed, in one shell, as
// an operator would type them: with the secret exported, email configured
// (Mailpit), the stack's server key secret at hand (the Secrets Manager
// emulator) and an S3 bucket named in an example (versitygw).
func TestExamplesRunAsPrinted(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "__complete", "").Output()
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, l := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(l, "\t")
		if name != "" && !strings.HasPrefix(name, ":") && name != "completion" && name != "help" {
			commands = append(commands, name)
		}
	}
	for _, c := range commands {
		if !slices.Contains(exampleOrder, c) {
			t.Fatalf("command %s is not in exampleOrder: place it where its examples can run", c)
		}
	}

	sm := smtest.Start(t)
	s3 := s3test.StartVersity(t)
	if err := os.Mkdir(filepath.Join(s3.Root, "my-licenses"), 0o755); err != nil {
		t.Fatal(err)
	}
	mp := mailtest.StartMailpit(t, false)
	home, work, bin := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "manage-licenses")); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin",
		"CAIO_LICENSE_SECRET=" + testSecret, "CAIO_LICENSE_CACHE_DIR=" + t.TempDir(),
		"CAIO_SMTP_SERVER=" + mp.Host, "CAIO_SMTP_PORT=" + strconv.Itoa(mp.Port), "CAIO_SMTP_TLS=none",
		"CAIO_SMTP_SENDER=licensing@vendor.example",
		"SERVER_KEY_ARN=" + sm.Create(t, "caio/server-key", ""),
		"AWS_ENDPOINT_URL_S3=" + s3.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + sm.URL,
		"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey, // kumo takes any
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}

	// One script: each example as printed between markers; serve runs
	// until it says it serves, then gets Ctrl-C.
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	type example struct{ cmd, line string }
	var ran []example
	for _, cmd := range exampleOrder {
		if !slices.Contains(commands, cmd) {
			t.Errorf("exampleOrder names %s, which is not a command", cmd)
			continue
		}
		for _, line := range examples(t, cmd) {
			if _, skip := cannotRunHere[line]; skip {
				continue
			}
			i := len(ran)
			ran = append(ran, example{cmd, line})
			fmt.Fprintf(&script, "echo '@@@ begin %d'\n", i)
			if serveRE.MatchString(line) {
				fmt.Fprintf(&script, `%s >serve.out 2>&1 & pid=$!
for _ in $(seq 300); do grep -q 'Serving the licensing API' serve.out && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -INT $pid 2>/dev/null; wait $pid; cat serve.out; grep -q 'Serving the licensing API' serve.out
`, line)
			} else {
				script.WriteString(line + "\n")
			}
			fmt.Fprintf(&script, "echo \"@@@ end %d $?\"\n", i)
		}
	}
	for line := range cannotRunHere {
		cmd := strings.Fields(line)[1]
		if !slices.Contains(examples(t, cmd), line) {
			t.Errorf("cannotRunHere lists %q, which is no longer an example", line)
		}
	}

	sh := exec.Command("bash", "-c", script.String())
	sh.Dir, sh.Env = work, env
	output, _ := sh.CombinedOutput()
	worked := map[string]bool{}
	text := string(output)
	for i, ex := range ran {
		begin := fmt.Sprintf("@@@ begin %d\n", i)
		_, rest, ok := strings.Cut(text, begin)
		if !ok {
			t.Fatalf("the examples stopped before %q:\n%s", ex.line, text)
		}
		body, after, _ := strings.Cut(rest, fmt.Sprintf("@@@ end %d ", i))
		status, _, _ := strings.Cut(after, "\n")
		if status != "0" {
			t.Errorf("%s example %q: exit %s\n%s", ex.cmd, ex.line, status, body)
			continue
		}
		worked[ex.cmd] = true
	}
	for _, c := range commands {
		if !worked[c] {
			t.Errorf("%s has no example that works as printed", c)
		}
	}
}
