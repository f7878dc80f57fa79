package functions_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient/attacktest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// apiGateway stands where API Gateway stands in AWS: it turns HTTP
// requests into HTTP API (payload 2.0) events for the function under the
// emulator, and its responses back into HTTP, headers and body untouched.
// One emulator is one execution environment: invokes are made one at a
// time (concurrent ones crash it), where AWS would start more.
func apiGateway(t *testing.T, e *emulator) string {
	call := v2Caller(e)
	var one sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		one.Lock()
		defer one.Unlock()
		body, _ := io.ReadAll(r.Body)
		headers := map[string]string{}
		for k := range r.Header {
			headers[k] = r.Header.Get(k)
		}
		reply := call(t, apitest.Call{Method: r.Method, Path: r.URL.Path, Header: headers, Body: string(body)})
		for k, v := range reply.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(reply.Status)
		w.Write(reply.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// The CAIO client against the activate function: activate, check on the
// lease, renew once past renew-after, deactivate, every answer verified
// against the pinned license key.
func TestClientAgainstTheActivateFunction(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	e := startEmulator(t, bootstrap(t, "activate"), map[string]string{
		"CAIO_LICENSE_DB_PATH": f.Path, "CAIO_LICENSE_PUBLIC_KEY": f.PublicKey, "CAIO_SERVER_KEY": f.ServerKey,
	})
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	clk := &fakeClock{t: time.Now()}
	c, err := licenseclient.New(licenseclient.Config{ServerURL: apiGateway(t, e), PublicKeys: keys, StateDir: t.TempDir(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := f.Keys["two-seats"]
	r := c.Activate(ctx, key, "node-1")
	if !r.OK || r.Lease == nil || r.FromLease {
		t.Fatalf("activate: %+v", r)
	}
	if r := c.Check(ctx, key, "node-1"); !r.OK || !r.FromLease {
		t.Fatalf("check before renew-after: %+v", r)
	}
	clk.t = r.Lease.RenewAfter.Add(time.Second)
	if r := c.Check(ctx, key, "node-1"); !r.OK || r.FromLease || r.Lease == nil {
		t.Fatalf("check after renew-after: %+v", r)
	}
	if r := c.Deactivate(ctx, key, "node-1"); !r.OK || r.Code != "DEACTIVATED" {
		t.Fatalf("deactivate: %+v", r)
	}
	if r := c.Activate(ctx, f.Keys["revoked"], "node-1"); r.OK || r.Code != "REVOKED" {
		t.Fatalf("revoked: %+v", r)
	}
	if !strings.Contains(e.logs.String(), `"function":"activate"`) {
		t.Fatal("no function log")
	}
}

// A customer's attacks on enforcement, against the activate function
// under the runtime emulator behind a gateway: license-check exits 1 on
// each (see attacktest).
func TestAttacksAgainstTheActivateFunction(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	e := startEmulator(t, bootstrap(t, "activate"), map[string]string{
		"CAIO_LICENSE_DB_PATH": f.Path, "CAIO_LICENSE_PUBLIC_KEY": f.PublicKey, "CAIO_SERVER_KEY": f.ServerKey,
	})
	check := filepath.Join(t.TempDir(), "license-check")
	cmd := exec.Command("go", "build", "-o", check, "./scripts/license-check")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building license-check: %v\n%s", err, out)
	}
	attacktest.Run(t, attacktest.Env{URL: apiGateway(t, e), Fixture: f, Check: check})
}
