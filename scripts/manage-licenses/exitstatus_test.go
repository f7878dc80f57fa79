package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/caio-licensing/caio-licensing/shared/config"
)

// A mistake in the command line exits 2 with one line naming it, for
// every command and every flag: the commands and flags are read from
// cobra's tree, so a new one without a case here fails this test. The CLI
// runs in-process (run is what main runs), on a database set up first.

// badValues is a wrong value for each flag, by name. A flag missing here
// fails the test: add the value a careless operator would give it.
var badValues = map[string]string{
	// Numbers out of range or not numbers.
	"days": "x", "expires-days": "0", "retention-days": "-1", "max-instances": "0", "max-services": "x",
	"max-requests-per-day": "-5", "max-activations-per-day": "x", "lease-hours": "0", "lease-minutes": "x", "seat-timeout-minutes": "-1", "grace-days": "91", "overage-percent": "101",
	"rate-per-address": "fast", "rate-per-key": "-1", "burst-per-address": "0", "burst-per-key": "x", "limit": "-1",
	// Booleans.
	"json": "maybe", "send": "maybe", "send-email": "maybe", "show-key": "maybe", "yes": "perhaps", "force": "maybe",
	"wide": "maybe", "no-descriptions": "maybe",
	// Fixed lists.
	"status": "bogus", "kind": "bogus", "format": "bogus",
	// Times.
	"since": "yesterday", "at": "noon", "expires-at": "soon",
	// Files and names that must not be empty.
	"output": "", "db": "", "secret-file": "", "secret": "", "secret-arn": "", "to-secret": "", "new-secret-file": "",
	"server-key": "", "tls-cert": "", "tls-key": "",
	// Addresses.
	"addr": "localhost", "metrics-addr": "nowhere:port", "trusted-proxies": "not-a-cidr", "ip-address": "999.1.1.1",
	"email": "not-an-email", "to": "no-at-sign",
	// Ids and words.
	"customer": "bad id!", "license-key": "not-a-key", "instance-id": "bad\x01id", "tier": "bad tier!",
	"features": "bad feature!", "reason": "bad\x01reason", "name": "",
}

// baseArgs are valid arguments and required flags for each command, so that
// the flag under test is the only mistake. LICENSE is replaced by a license
// id of the fixture.
var baseArgs = map[string][]string{
	"init-db": nil, "add-customer": {"C9", "Name"}, "update-customer": {"C1", "--name", "New"}, "list-customers": nil,
	"generate-license": {"C1", "standard"}, "distribute-license": {"C1", "a@example.test", "standard"},
	"renew-license": {"LICENSE", "--days", "30"}, "update-license": {"LICENSE", "--max-services", "60"},
	"revoke-license": {"LICENSE"}, "suspend-license": {"LICENSE"}, "reinstate-license": {"LICENSE"},
	"list-licenses": nil, "show-license": {"LICENSE"}, "verify-license": {"CAIO-v1-C1-AAAAAAAAAAAAAAAAAAAA"}, "public-key": nil,
	"export-licenses": {"--format", "csv"}, "track-activation": {"LICENSE", "--instance-id", "i-1"},
	"deactivate": {"LICENSE", "--instance-id", "i-1"}, "list-activations": nil, "stats": nil, "renewal-reminders": nil,
	"list-events": nil, "serve": nil, "backup": {"--output", "OUT"}, "restore": {"OUT", "--yes"}, "repair": nil,
	"report": {"--output", "OUT"}, "resend-license": {"LICENSE", "--to", "a@example.test"}, "list-deliveries": nil,
	"new-secret": nil, "rotate-secret": {"--new-secret-file", "NEWSECRET"}, "certify-server-key": nil,
	"rotate-server-key": nil, "issue-offline-lease": {"LICENSE", "--instance-id", "i-2", "--days", "1", "--output", "OUT"},
	"maintain": nil, "vacuum": nil, "export-events": {"--since", "1d"}, "version": nil,
	"completion": nil, "bash": nil, "zsh": nil, "fish": nil, "powershell": nil,
}

// runIn runs the CLI in-process with env as its whole environment.
func runIn(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, config.Map(env), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestEveryCommandLineMistakeExits2(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	runCLI := func(args ...string) (int, string, string) { return runIn(env, args...) }
	// Nothing is signed below: customers only, and a license inserted by
	// the one command that needs the secret.
	env["CAIO_LICENSE_SECRET"] = "XwgwxBOq4GReE5dNkqVFQjRNVYjzlXi8+msIH5RMVDc="
	if code, _, stderr := runCLI("add-customer", "C1", "Acme", "--email", "ops@example.test"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := runCLI("--json", "generate-license", "C1", "standard")
	if code != 0 {
		t.Fatal(stderr)
	}
	i := strings.Index(stdout, `"license_id": "`)
	license := stdout[i+len(`"license_id": "`):][:32]
	delete(env, "CAIO_LICENSE_SECRET")
	out := filepath.Join(t.TempDir(), "out")
	newSecret := filepath.Join(t.TempDir(), "new-secret")
	os.WriteFile(newSecret, []byte("XwgwxBOq4GReE5dNkqVFQjRNVYjzlXi8+msIH5RMVDc=\n"), 0o600)

	root := (&app{}).rootCommand()
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			cmds = append(cmds, sub)
			walk(sub)
		}
	}
	walk(root)
	if len(cmds) < 40 {
		t.Fatalf("only %d commands in the tree", len(cmds))
	}
	cases := 0
	for _, c := range cmds {
		base, ok := baseArgs[c.Name()]
		if !ok {
			t.Errorf("command %q has no base arguments in this test: add them", c.Name())
			continue
		}
		path := strings.Fields(c.CommandPath())[1:]
		fill := func(args []string) []string {
			outArgs := make([]string, len(args))
			for i, a := range args {
				outArgs[i] = strings.NewReplacer("LICENSE", license, "OUT", out, "NEWSECRET", newSecret).Replace(a)
			}
			return outArgs
		}
		check := func(name string, args []string, mentions ...string) {
			t.Helper()
			cases++
			code, stdout, stderr := runCLI(args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitUsage {
				t.Errorf("%s: exit %d, want 2\nstdout: %.200s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
				return
			}
			if !strings.HasPrefix(lines[0], "error [BAD_REQUEST]: ") || len(lines) > 2 || (len(lines) == 2 && !strings.HasPrefix(lines[1], "Did you mean")) {
				t.Errorf("%s: want one line 'error [BAD_REQUEST]: ...', got %q", strings.Join(args, " "), stderr)
				return
			}
			if !slices.ContainsFunc(mentions, func(m string) bool { return strings.Contains(strings.ToLower(lines[0]), strings.ToLower(m)) }) {
				t.Errorf("%s: %q names none of %q", name, lines[0], mentions)
			}
		}
		// An unknown flag.
		check(c.CommandPath()+" --no-such-flag", append(append(slices.Clone(path), fill(base)...), "--no-such-flag"), "no-such-flag")
		// Every flag the command takes, with a wrong value.
		c.InheritedFlags() // merges the global flags into c.Flags()
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" || f.Name == "version" {
				return
			}
			bad, ok := badValues[f.Name]
			if !ok {
				t.Errorf("flag --%s of %s has no wrong value in this test: add one", f.Name, c.Name())
				return
			}
			args := append(slices.Clone(path), fill(withoutFlag(base, f.Name))...)
			args = append(args, "--"+f.Name+"="+bad)
			check(c.CommandPath()+" --"+f.Name, args, f.Name, strings.ReplaceAll(f.Name, "-", " "), bad)
		})
	}
	t.Logf("%d commands, %d command lines with one mistake each", len(cmds), cases)
}

// withoutFlag drops --name and its value from args (the case gives its own).
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--"+name {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{"3001": "127.0.0.1:3001", "127.0.0.1:3000": "127.0.0.1:3000", ":8080": ":8080", "[::1]:3000": "[::1]:3000"} {
		if got, err := listenAddr(in); err != nil || got != want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"localhost", "127.0.0.1:http", "99999", "host:70000", ""} {
		if got, err := listenAddr(bad); err == nil {
			t.Errorf("listenAddr(%q) = %q, want an error", bad, got)
		}
	}
}
