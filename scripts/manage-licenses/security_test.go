package main_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
)

// A weak secret gets no signing key, and the error says how to make one.
func TestWeakSecretIsRefused(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_DB_PATH"] = filepath.Join(c.home, "test.db")
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")
	for _, weak := range []string{"a", strings.Repeat("a", 16), strings.Repeat("ab", 20),
		// Phrases, however long: a five-line word list cracked a database
		// sealed under one in 15 s.
		"thequickbrownfoxjumpsoverthelazydog", "correcthorsebatterystaplecorrecthorse"} {
		r := c.run(map[string]string{"CAIO_LICENSE_SECRET": weak}, "generate-license", "CUST-001", "standard")
		if r.code != 1 || !strings.Contains(r.stderr, "[WEAK_SECRET]") || !strings.Contains(r.stderr, "manage-licenses new-secret") {
			t.Fatalf("secret %q: exit %d\n%s", weak, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, weak+"\"") || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("the refusal is not one line, or shows the secret: %q", r.stderr)
		}
	}
	// Nothing was created: no signing key, so no public key.
	c.fails(1, "SECRET_REQUIRED", "no signing key yet", "public-key")
}

// Trust on first use: the signing key a command creates is remembered for
// that database like a proven key, so the next commands without the
// secret verify keys at once.
func TestFirstSigningKeyIsRemembered(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_DB_PATH"] = filepath.Join(c.home, "fresh.db")
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")
	key := c.run(map[string]string{"CAIO_LICENSE_SECRET": testSecret}, "generate-license", "CUST-001", "standard").lastLine()
	if !strings.HasPrefix(key, "CAIO-v1-") {
		t.Fatalf("generate-license printed %q", key)
	}
	c.ok("verify-license", key)
	c.ok("track-activation", key, "--instance-id", "node-1")
	if r := c.ok("public-key"); strings.Contains(r.stderr, "unverified") {
		t.Fatalf("public-key calls the key this machine made unverified: %q", r.stderr)
	}
	// Another user's home has no such memory: the database's word alone
	// is not enough.
	other := newCLI(t)
	other.env["CAIO_LICENSE_DB_PATH"] = c.env["CAIO_LICENSE_DB_PATH"]
	other.fails(1, "PUBLIC_KEY_REQUIRED", "trusted public key", "verify-license", key)
}

// A key typed where a command wants something else is not echoed back.
func TestMistypedKeyIsNotEchoed(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, key := c.setup()
	for _, args := range [][]string{{"list-activations", key}, {"--json", "list-activations", key}, {key}} {
		r := c.run(nil, args...)
		if r.code != 2 || strings.Contains(r.stderr, key) || !strings.Contains(r.stderr, "CAIO-v1-CUST-001-…") {
			t.Errorf("%v: exit %d %q", args[:len(args)-1], r.code, r.stderr)
		}
	}
}

// serve refuses a server key file that group or others can read, as ssh
// does, and says how to fix it; rotate-server-key replaces the key and
// drops the old one's certificate, so a copy of it starts no server.
func TestServerKeyFileAndRotation(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.setup()
	keyFile := filepath.Join(c.home, "server_key")
	c.ok("certify-server-key", "--output", keyFile)
	copied := filepath.Join(c.home, "copied_key")
	raw, _ := os.ReadFile(keyFile)
	os.WriteFile(copied, raw, 0o600)
	os.Chmod(keyFile, 0o640)
	delete(c.env, "CAIO_LICENSE_SECRET")
	c.fails(1, "CONFIG", "chmod 600 "+keyFile, "serve", "--addr", "127.0.0.1:0", "--server-key", keyFile)
	os.Chmod(keyFile, 0o600)

	c.env["CAIO_LICENSE_SECRET"] = testSecret
	var r struct {
		KeyID   string `json:"key_id"`
		Retired string `json:"retired"`
	}
	if err := json.Unmarshal([]byte(c.ok("--json", "rotate-server-key", "--output", keyFile).stdout), &r); err != nil || r.Retired == "" || r.KeyID == r.Retired {
		t.Fatalf("rotate-server-key: %+v %v", r, err)
	}
	if now, _ := os.ReadFile(keyFile); string(now) == string(raw) {
		t.Fatal("rotate-server-key left the old key in the file")
	}
	if info, _ := os.Stat(keyFile); info.Mode().Perm() != 0o600 {
		t.Fatalf("the rotated key file has mode %v", info.Mode().Perm())
	}
	delete(c.env, "CAIO_LICENSE_SECRET")
	c.fails(1, "CONFIG", "has no certificate", "serve", "--addr", "127.0.0.1:0", "--server-key", copied)
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	a, b := c.ok("new-secret").lastLine(), c.ok("new-secret").lastLine()
	for _, s := range []string{a, b} {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 {
			t.Fatalf("new-secret printed %q: want 32 random bytes in base64", s)
		}
	}
	if a == b {
		t.Fatal("new-secret printed the same secret twice")
	}
	var j struct{ Secret string }
	if err := json.Unmarshal([]byte(c.ok("--json", "new-secret").stdout), &j); err != nil || len(j.Secret) != 44 {
		t.Fatalf("--json new-secret: %+v %v", j, err)
	}
	// A secret it makes is good enough for a new signing key.
	c.env["CAIO_LICENSE_DB_PATH"] = filepath.Join(c.home, "test.db")
	c.env["CAIO_LICENSE_SECRET"] = a
	c.ok("init-db")
	c.ok("public-key")
}

// --secret-file (and - for stdin) instead of a value in the process list;
// --secret still works but warns.
func TestSecretSources(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	db, _ := c.setup()
	delete(c.env, "CAIO_LICENSE_SECRET")
	file := filepath.Join(c.home, "secret")
	if err := os.WriteFile(file, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.ok("--db", db, "export-licenses", "--format", "json", "--secret-file", file)
	if !strings.Contains(r.stdout, "CAIO-v1-CUST-001-") || r.stderr != "" {
		t.Fatalf("--secret-file: %s%s", r.stdout, r.stderr)
	}
	r = c.runStdin(testSecret+"\n", "--db", db, "export-licenses", "--format", "json", "--secret-file", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "CAIO-v1-CUST-001-") {
		t.Fatalf("--secret-file -: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	r = c.ok("--db", db, "export-licenses", "--format", "json", "--secret", testSecret)
	if !strings.Contains(r.stderr, "process list") || strings.Contains(r.stderr, testSecret) {
		t.Fatalf("--secret: warning %q", r.stderr)
	}
	os.Chmod(file, 0o644)
	if r := c.ok("--db", db, "export-licenses", "--format", "json", "--secret-file", file); !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("a secret file others can read: no warning: %q", r.stderr)
	}
	c.fails(2, "BAD_REQUEST", "give the signing secret once", "--db", db, "export-licenses", "--format", "json", "--secret-file", file, "--secret", testSecret)
	c.fails(1, "CONFIG", "cannot read it", "--db", db, "export-licenses", "--format", "json", "--secret-file", filepath.Join(c.home, "missing"))
	c.fails(1, "CONFIG", "empty", "--db", db, "export-licenses", "--format", "json", "--secret-file", "/dev/null")
	wrong := filepath.Join(c.home, "wrong")
	os.WriteFile(wrong, []byte("gQ2n0lUw3v9oZbJc1xQeTq8KdYh7s4GfP6aRtLzE5Ck=\n"), 0o600)
	c.fails(1, "SECRET_MISMATCH", "does not match", "--db", db, "export-licenses", "--format", "json", "--secret-file", wrong)
}

// rotate-secret re-seals everything under a new secret; keys and the public
// key stay; the old secret stops working. The new secret never comes from
// the command line.
func TestRotateSecret(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	_, key := c.setup()
	pub := c.ok("public-key").lastLine()
	newSecret := c.ok("new-secret").lastLine()
	file := filepath.Join(c.home, "new-secret")
	os.WriteFile(file, []byte(newSecret+"\n"), 0o600)

	c.fails(2, "BAD_REQUEST", "unknown flag", "rotate-secret", "--new-secret", newSecret)
	c.fails(2, "BAD_REQUEST", "CAIO_NEW_LICENSE_SECRET", "rotate-secret")
	weak := filepath.Join(c.home, "weak")
	os.WriteFile(weak, []byte("aaaaaaaaaaaaaaaa\n"), 0o600)
	c.fails(1, "WEAK_SECRET", "new-secret", "rotate-secret", "--new-secret-file", weak)

	r := c.ok("rotate-secret", "--new-secret-file", file)
	if !strings.Contains(r.stdout, "1 signing keys and 1 license keys") || strings.Contains(r.stdout+r.stderr, newSecret) {
		t.Fatalf("rotate-secret: %s%s", r.stdout, r.stderr)
	}
	c.fails(1, "SECRET_MISMATCH", "does not match", "export-licenses", "--format", "json")
	c.env["CAIO_LICENSE_SECRET"] = newSecret
	if got := c.ok("public-key").lastLine(); got != pub {
		t.Fatalf("public key changed: %s, was %s", got, pub)
	}
	if out := c.ok("export-licenses", "--format", "json").stdout; !strings.Contains(out, key) {
		t.Fatal("the license key changed in the rotation")
	}
	c.ok("track-activation", key, "--instance-id", "i-1")
	// From the environment variable, back again.
	r = c.run(map[string]string{"CAIO_NEW_LICENSE_SECRET": testSecret}, "rotate-secret")
	if r.code != 0 {
		t.Fatalf("rotate-secret from CAIO_NEW_LICENSE_SECRET: %s", r.stderr)
	}
}

// The attack: whoever can write the database file adds a public key of
// their own and mints keys with it. verify-license, track-activation and
// public-key no longer take the database's word for it.
func TestPlantedPublicKeyCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	dbPath, genuine := c.setup()
	pub := c.ok("public-key").lastLine()
	trusted := filepath.Join(c.home, ".caio", "trusted_keys.json")
	if info, err := os.Stat(trusted); err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(readFile(t, trusted), pub) {
		t.Fatalf("the proven key is not remembered privately: %v %v", info, err)
	}

	apub, apriv, _ := ed25519.GenerateKey(rand.Reader)
	akid := licensekey.KeyID(apub)
	now := time.Now().UTC().Truncate(time.Second)
	forged, err := licensekey.Encode(licensekey.Claims{LicenseID: strings.Repeat("cd", 16), CustomerID: "CUST-001", Tier: "enterprise",
		IssuedAt: now, ExpiresAt: now.Add(3650 * 24 * time.Hour), MaxInstances: 1000000, MaxServices: 1, MaxRequestsPerDay: 1}, apriv)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := now.Format(time.RFC3339)
	for _, q := range []string{
		"INSERT INTO signing_keys (key_id, public_key, sealed_private_key, created_at) VALUES ('" + akid + "', x'" + hexOf(apub) + "', x'00', '2030-01-01T00:00:00Z')",
		"INSERT INTO licenses (id, customer_id, tier, features, max_instances, max_services, max_requests_per_day, issued_at, expires_at, status, key_id, created_at, updated_at) VALUES ('" + strings.Repeat("cd", 16) + "', 'CUST-001', 'enterprise', '[]', 1000000, 1, 1, '" + ts + "', '2036-01-01T00:00:00Z', 'active', '" + akid + "', '" + ts + "', '" + ts + "')",
		"INSERT INTO license_keys (digest, license_id, sealed_key, issued_at, expires_at) VALUES ('" + licensekey.Digest(forged) + "', '" + strings.Repeat("cd", 16) + "', x'00', '" + ts + "', '2036-01-01T00:00:00Z')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	// With the secret: the database is seen to be tampered with.
	c.fails(1, "DB_INVALID", akid, "track-activation", forged, "--instance-id", "i-1")
	c.fails(1, "DB_INVALID", akid, "public-key")
	// Without it: the keys proven earlier on this machine decide, and the
	// forged key's signer is named.
	delete(c.env, "CAIO_LICENSE_SECRET")
	c.fails(1, "INVALID_KEY", akid, "track-activation", forged, "--instance-id", "i-1")
	c.fails(1, "INVALID_KEY", akid, "verify-license", forged)
	c.ok("track-activation", genuine, "--instance-id", "i-1")
	// On another account (no trusted-keys file), no verdict on the database's word.
	other := newCLI(t)
	other.env["CAIO_LICENSE_DB_PATH"] = dbPath
	other.fails(1, "PUBLIC_KEY_REQUIRED", "CAIO_LICENSE_PUBLIC_KEY", "verify-license", forged)
	// Pinned: refused.
	other.env["CAIO_LICENSE_PUBLIC_KEY"] = pub
	other.fails(1, "INVALID_KEY", akid, "verify-license", forged)
	delete(other.env, "CAIO_LICENSE_PUBLIC_KEY")
	// public-key without the secret says it is unverified.
	r := other.ok("public-key")
	if !strings.Contains(r.stderr, "unverified") {
		t.Fatalf("public-key without the secret: %q", r.stderr)
	}
	var j struct{ Verified bool }
	if json.Unmarshal([]byte(other.ok("--json", "public-key").stdout), &j); j.Verified {
		t.Fatal("public-key --json claims an unproven key is verified")
	}
	// A trusted-keys file that others could have written is ignored.
	os.Chmod(trusted, 0o644)
	c.fails(1, "PUBLIC_KEY_REQUIRED", "CAIO_LICENSE_PUBLIC_KEY", "verify-license", genuine)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// backup and export write through a private temporary directory: a symlink
// at the target is replaced, never followed, and no predictable name exists
// for another user to plant.
func TestOutputFilesDoNotFollowSymlinks(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	victim := filepath.Join(c.home, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	for _, args := range [][]string{{"backup", "--output"}, {"export-licenses", "--format", "csv", "--output"}} {
		out := filepath.Join(c.home, "out-"+args[0])
		if err := os.Symlink(victim, out); err != nil {
			t.Fatal(err)
		}
		// The old build's temporary name, planted as a symlink too.
		os.Symlink(victim, out+".tmp-1")
		if args[0] == "backup" {
			args = append([]string{"backup", "--force"}, args[1:]...) // a backup never replaces a file unasked
		}
		c.ok(append(args, out)...)
		if readFile(t, victim) != "precious" {
			t.Fatalf("%s wrote through a symlink", args[0])
		}
		info, err := os.Lstat(out)
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: output %v %v, want a regular 0600 file", args[0], info, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(c.home, ".tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// --db naming a FIFO, a device or a directory: one clear line, at once.
func TestDBNotARegularFile(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	fifo := filepath.Join(c.home, "fifo.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, says := range map[string]string{fifo: "named pipe", "/dev/zero": "device", c.home: "directory"} {
		done := make(chan result, 1)
		go func() { done <- c.run(nil, "--db", path, "stats") }()
		select {
		case r := <-done:
			if r.code != 1 || !strings.Contains(r.stderr, "[DB_INVALID]") || !strings.Contains(r.stderr, says) {
				t.Errorf("%s: exit %d %q", path, r.code, r.stderr)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the command hangs", path)
		}
	}
}

// The attack on a shared machine: another local user makes the S3 cache
// directory first (mode 0777) and plants a database in it. The operator's
// command refuses the directory instead of trusting what is in it.
func TestS3CacheDirectoryOfAnotherUser(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to act as a second user")
	}
	srv := s3test.StartGofakes3(t)
	c := s3CLI(t, srv)
	c.ok("init-db")
	c.ok("add-customer", "CUST-001", "Acme Corp")

	shared := filepath.Join(t.TempDir(), "shared-tmp")
	if err := os.Mkdir(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o777|os.ModeSticky) // like /tmp (os ignores a raw 0o1000)
	os.Chmod(filepath.Dir(shared), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(shared)), 0o755) // the test's own temp root
	cache := filepath.Join(shared, "caio-license-cache")
	out, err := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c",
		"mkdir -m 0777 "+cache+" && echo planted > "+cache+"/planted.db").CombinedOutput()
	if err != nil {
		t.Fatalf("acting as nobody: %v %s", err, out)
	}
	c.env["CAIO_LICENSE_CACHE_DIR"] = cache
	r := c.fails(1, "CONFIG", cache, "list-customers")
	if !strings.Contains(r.stderr, "belongs to user id 65534") {
		t.Fatalf("the refusal does not say whose it is: %q", r.stderr)
	}
	// One's own directory that others can write to: refused too.
	open := filepath.Join(shared, "mine")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	c.env["CAIO_LICENSE_CACHE_DIR"] = open
	c.fails(1, "CONFIG", "remove it", "list-customers")
	// One's own that others can only read (mkdir under umask 022) is
	// closed, then used.
	readable := filepath.Join(shared, "readable")
	os.Mkdir(readable, 0o755)
	os.Chmod(readable, 0o755)
	c.env["CAIO_LICENSE_CACHE_DIR"] = readable
	c.ok("list-customers")
	if info, err := os.Stat(readable); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("a readable cache directory was not closed: %v %v", info.Mode(), err)
	}
	// The attack on that: a link planted where the cache directory is
	// looked for, pointing at a directory of ours. Its mode is not ours to
	// change through the link, and it is not used.
	mine := filepath.Join(c.home, "projects")
	os.Mkdir(mine, 0o755)
	os.Chmod(mine, 0o755)
	link := filepath.Join(shared, "planted-link")
	if err := os.Symlink(mine, link); err != nil {
		t.Fatal(err)
	}
	c.env["CAIO_LICENSE_CACHE_DIR"] = link
	c.fails(1, "CONFIG", "symbolic link", "list-customers")
	if info, _ := os.Stat(mine); info.Mode().Perm() != 0o755 {
		t.Fatalf("the mode of the directory behind a planted link changed to %v", info.Mode())
	}

	// The default is per user, under the home's cache directory, 0700.
	delete(c.env, "CAIO_LICENSE_CACHE_DIR")
	if out := c.ok("list-customers").stdout; !strings.Contains(out, "CUST-001") {
		t.Fatalf("list-customers: %s", out)
	}
	info, err := os.Stat(filepath.Join(c.home, ".cache", "caio-licensing"))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("default cache directory: %v %v, want 0700 under ~/.cache", info, err)
	}
}

// serve never holds the secret; without a pinned public key, or the secret
// at start to prove the database's keys, it says that it takes the
// database's word for which keys are genuine.
func TestServeWarnsWithoutPinnedKey(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	db, key := c.setup()
	pub := c.ok("public-key").lastLine()
	// Pinned, proven with the secret at start (then pinned), or proven on
	// this machine before (remembered in HOME): no warning. Only a
	// stranger to the database, with neither, has its word alone.
	stranger := t.TempDir()
	for _, tc := range []struct{ pinned, secret, stranger bool }{{false, false, true}, {false, false, false}, {true, false, true}, {false, true, true}} {
		pinned := tc.pinned || tc.secret || !tc.stranger
		cmd := exec.Command(binary, "--db", db, "serve", "--addr", "127.0.0.1:0")
		cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH")}
		if tc.stranger {
			cmd.Env[0] = "HOME=" + stranger
		}
		if tc.pinned {
			cmd.Env = append(cmd.Env, "CAIO_LICENSE_PUBLIC_KEY="+pub)
		}
		if tc.secret {
			cmd.Env = append(cmd.Env, "CAIO_LICENSE_SECRET="+testSecret)
		}
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var head strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(head.String(), "Serving") {
			n, err := stderr.Read(buf)
			head.Write(buf[:n])
			if err != nil {
				t.Fatalf("serve stopped: %s", head.String())
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		warned := strings.Contains(head.String(), "pin them with CAIO_LICENSE_PUBLIC_KEY")
		if warned == pinned {
			t.Errorf("%+v: start-up said %q", tc, head.String())
		}
		if strings.Contains(head.String(), key) || strings.Contains(head.String(), testSecret) {
			t.Fatal("serve printed a key or the secret")
		}
	}
}
