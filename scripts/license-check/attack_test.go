package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient/attacktest"
)

// A customer's attacks on enforcement, against serve: license-check exits
// 1 on each (see attacktest).
func TestAttacksAgainstServe(t *testing.T) {
	t.Parallel() // beside the other tests that wait on real leases
	f := apitest.NewFixture(t, t.TempDir())
	home := t.TempDir()
	s := &site{t: t, home: home, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"CAIO_LICENSE_DB_PATH=" + f.Path, "CAIO_LICENSE_PUBLIC_KEY=" + f.PublicKey, "CAIO_SERVER_KEY=" + f.ServerKey}}
	s.start()
	attacktest.Run(t, attacktest.Env{URL: s.url, Fixture: f, Check: check})
}

// serve, started with the secret, renews a server key past a third of its
// term before it serves: a new key in the file, the old one retired, and
// answers that clients accept.
func TestServeRenewsItsServerKeyAtStart(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	home := t.TempDir()
	keyFile := filepath.Join(home, ".caio", "server_key")
	os.MkdirAll(filepath.Dir(keyFile), 0o700)
	if err := os.WriteFile(keyFile, []byte(f.ExpiredServerKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, home: home, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"CAIO_LICENSE_DB_PATH=" + f.Path, "CAIO_LICENSE_PUBLIC_KEY=" + f.PublicKey, "CAIO_LICENSE_SECRET=" + apitest.Secret}}
	s.start()
	if now, _ := os.ReadFile(keyFile); strings.TrimSpace(string(now)) == f.ExpiredServerKey {
		t.Fatal("serve kept a server key whose certificate has ended")
	}
	s.env = append(s.env, "CAIO_LICENSE_KEY="+f.Keys["roomy"])
	r := s.run(check, "activate", "--server", s.url, "--instance-id", "renewed-1", "--state-dir", t.TempDir(), "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"VALID"`) {
		t.Fatalf("activate against the renewed key: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}
