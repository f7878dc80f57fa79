package main_test

import (
	"os"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient/attacktest"
)

// A customer's attacks on enforcement, against serve: license-check exits
// 1 on each (see attacktest).
func TestAttacksAgainstServe(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	home := t.TempDir()
	s := &site{t: t, home: home, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"CAIO_LICENSE_DB_PATH=" + f.Path, "CAIO_LICENSE_PUBLIC_KEY=" + f.PublicKey, "CAIO_SERVER_KEY=" + f.ServerKey}}
	s.start()
	attacktest.Run(t, attacktest.Env{URL: s.url, Fixture: f, Check: check})
}
