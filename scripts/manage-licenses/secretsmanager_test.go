package main_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/awssecret/smtest"
	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// smCLI is a CLI whose signing secret lives in a real Secrets Manager
// emulator, as on a deployed stack, and never in its environment.
func smCLI(t *testing.T) (*cli, *smtest.Server, string) {
	sm := smtest.Start(t)
	c := execCLI(t)
	for k, v := range sm.Env() {
		c.env[k] = v
	}
	c.env["CAIO_LICENSE_DB_PATH"] = filepath.Join(c.home, "caio.db")
	return c, sm, sm.Create(t, "caio/license-secret", testSecret)
}

// The CLI reads the signing secret from Secrets Manager like the functions
// do (--secret-arn, CAIO_LICENSE_SECRET_ARN); a missing or wrong secret is
// refused before anything changes, and the value is never printed.
func TestSecretFromSecretsManager(t *testing.T) {
	t.Parallel()
	c, sm, arn := smCLI(t)
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp", "--email", "ops@acme.test")
	r := c.ok("--secret-arn", arn, "generate-license", "CUST-001", "standard")
	key := r.lastLine()
	if !keyPattern.MatchString(key) {
		t.Fatalf("no key: %s", r.stdout)
	}
	c.env["CAIO_LICENSE_SECRET_ARN"] = arn
	r = c.ok("export-licenses", "--format", "json")
	if !strings.Contains(r.stdout, key) {
		t.Fatalf("export with CAIO_LICENSE_SECRET_ARN: %s", r.stdout)
	}
	delete(c.env, "CAIO_LICENSE_SECRET_ARN")
	count := func() int {
		var list []any
		if err := json.Unmarshal([]byte(c.ok("--json", "list-licenses").stdout), &list); err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	before := count()
	c.fails(1, "CONFIG", "--secret-arn caio/missing: cannot read the signing secret from Secrets Manager", "--secret-arn", "caio/missing", "generate-license", "CUST-001", "standard")
	wrong := sm.Create(t, "caio/other", "gQ2n0lUw3v9oZbJc1xQeTq8KdYh7s4GfP6aRtLzE5Ck=")
	r = c.fails(1, "SECRET_MISMATCH", "--secret-arn "+wrong, "--secret-arn", wrong, "generate-license", "CUST-001", "standard")
	c.fails(2, "BAD_REQUEST", "give the signing secret once", "--secret-arn", arn, "--secret-file", "/dev/null", "generate-license", "CUST-001", "standard")
	if n := count(); n != before {
		t.Fatalf("refused commands changed the database: %d licenses, then %d", before, n)
	}
	if strings.Contains(r.stderr, "gQ2n0lUw3v9") {
		t.Fatalf("the secret's value was printed: %s", r.stderr)
	}
	// No credentials: one line that says what to set, not the SDK's chain.
	r = c.run(map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": ""}, "--secret-arn", arn, "generate-license", "CUST-001", "standard")
	if r.code != 1 || !strings.Contains(r.stderr, "no AWS credentials found: set AWS_PROFILE") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("no credentials: exit %d %q", r.code, r.stderr)
	}
}

// certify-server-key --to-secret stores the key where the activate
// function reads it, keeps a good one on a second run, and never
// overwrites a secret that holds anything else (the signing secret
// itself, by a wrong ARN, would lock the database for good).
func TestCertifyServerKeyToSecret(t *testing.T) {
	t.Parallel()
	c, sm, arn := smCLI(t)
	c.env["CAIO_LICENSE_SECRET_ARN"] = arn
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp", "--email", "ops@acme.test")
	key := c.ok("generate-license", "CUST-001", "standard").lastLine()
	serverARN := sm.Create(t, "caio/server-key", "") // as the stack makes it: no value
	r := c.ok("certify-server-key", "--to-secret", serverARN)
	stored := sm.Value(t, serverARN)
	if !strings.Contains(r.stdout, "stored in "+serverARN) || stored == "" || strings.Contains(r.stdout+r.stderr, stored) {
		t.Fatalf("first run: %q %q (stored %d bytes)", r.stdout, r.stderr, len(stored))
	}
	if r := c.ok("certify-server-key", "--to-secret", serverARN); !strings.HasSuffix(strings.TrimSpace(r.stdout), "kept") || sm.Value(t, serverARN) != stored {
		t.Fatalf("second run replaced a good key: %q", r.stdout)
	}
	c.ok("certify-server-key", "--to-secret", serverARN, "--force")
	current := sm.Value(t, serverARN)
	if current == stored || current == "" {
		t.Fatal("--force kept the old key")
	}
	// Wrong ARNs: the signing secret (never replaced, even with --force),
	// a value that is not a key, a key this database never certified.
	c.fails(1, "CONFIG", "holds the signing secret itself", "certify-server-key", "--to-secret", arn)
	c.fails(1, "CONFIG", "holds the signing secret itself", "certify-server-key", "--to-secret", arn, "--force")
	if sm.Value(t, arn) != testSecret {
		t.Fatal("the signing secret was overwritten")
	}
	smtpARN := sm.Create(t, "caio/smtp-password", "hunter2-but-longer")
	c.fails(1, "CONFIG", "not a server key", "certify-server-key", "--to-secret", smtpARN)
	foreign := sm.Create(t, "caio/other-server-key", "gQ2n0lUw3v9oZbJc1xQeTq8KdYh7s4GfP6aRtLzE5Ck=")
	c.fails(1, "CONFIG", "never certified", "certify-server-key", "--to-secret", foreign)
	if sm.Value(t, smtpARN) != "hunter2-but-longer" || sm.Value(t, foreign) != "gQ2n0lUw3v9oZbJc1xQeTq8KdYh7s4GfP6aRtLzE5Ck=" {
		t.Fatal("a refused --to-secret changed the secret")
	}
	c.fails(2, "BAD_REQUEST", "one place", "certify-server-key", "--to-secret", serverARN, "--output", filepath.Join(c.home, "k"))

	// serve, like the activate function, signs with the stored key.
	c.env["CAIO_SERVER_KEY_ARN"] = serverARN
	c.env["CAIO_LICENSE_PUBLIC_KEY"] = c.ok("public-key").lastLine()
	delete(c.env, "CAIO_LICENSE_SECRET_ARN")
	s := startServe(t, c)
	resp := post(t, http.DefaultClient, s.url, key, map[string]string{contract.HeaderInstanceID: "i-1"})
	cert, err := servercert.Parse(resp.Header.Get(contract.HeaderCertificate))
	if err != nil {
		t.Fatalf("validate: %s, certificate: %v", resp.Status, err)
	}
	priv, err := servercert.ParsePrivateKey(current)
	if err != nil || !cert.PublicKey.Equal(priv.Public()) {
		t.Fatalf("serve signs with key %s, not the stored one (%v)", cert.KeyID(), err)
	}
}
