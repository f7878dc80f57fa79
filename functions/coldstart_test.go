package functions_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/awssecret/smtest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// BenchmarkColdStart measures, under the emulator, the time from starting
// the process to the first response: the activate function (opening the
// database, reading the server key and its certificate, answering an
// instance's validate of a genuine key with a signed lease) beside the
// smallest Go function built the same way. The ratio is reported too.
func BenchmarkColdStart(b *testing.B) {
	db, actEnv := newDB(b)
	key := issueKey(b, db, licensing.GenerateRequest{Tier: "standard", ExpiresDays: 30, MaxInstances: 5, MaxServices: 10, MaxRequestsPerDay: 1000}, "instance-001")
	var activate, baseline time.Duration
	event := sample(b, "activate", "http-api-validate", key)
	measure := func(bin string, env map[string]string, payload []byte, want string) time.Duration {
		e := startEmulator(b, bin, env)
		start := e.started
		status, body := e.invoke(b, payload)
		d := time.Since(start)
		if status != 200 || !strings.Contains(string(body), want) {
			b.Fatalf("%d %s", status, body)
		}
		e.stop()
		return d
	}
	actBin, baseBin := bootstrap(b, "activate"), bootstrap(b, "baseline")
	b.ResetTimer()
	for b.Loop() {
		activate += measure(actBin, actEnv, event, `\"code\":\"VALID\"`)
		baseline += measure(baseBin, nil, []byte(`{}`), `{}`)
	}
	n := float64(b.N)
	b.ReportMetric(activate.Seconds()*1000/n, "activate-ms")
	b.ReportMetric(baseline.Seconds()*1000/n, "baseline-ms")
	b.ReportMetric(float64(activate)/float64(baseline), "ratio")
}

// deployedActivate is the activate function as deployed: the database in
// S3 (versitygw) with one five-seat license, instance-001 holding a seat,
// and the server key in Secrets Manager (kumo), each behind a proxy that
// adds latency to every request. serverKey is the secret's value: the
// certified key, unless the caller gives another ("" for a secret with no
// value yet). It returns the function's environment (each cold start
// needs a CAIO_LICENSE_CACHE_DIR of its own), the license key, and the
// certified server key.
func deployedActivate(tb testing.TB, latency time.Duration, serverKey *string) (map[string]string, string, string) {
	tb.Helper()
	const key = "deployed/caio_licenses.db"
	s3 := s3test.StartVersity(tb)
	store, svc, is := s3DatabaseOn(tb, s3, key, 5)
	ctx := context.Background()
	pub, err := svc.PublicKey(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	certified, _, err := svc.CertifyServerKey(ctx, 30)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: "instance-001"}); err != nil {
		tb.Fatal(err)
	}
	store.Close()
	value := servercert.EncodePrivateKey(certified)
	if serverKey != nil {
		value = *serverKey
	}
	sm := smtest.Start(tb)
	arn := sm.Create(tb, "caio/server-key", value)
	s3Proxy, smProxy := s3test.NewProxy(tb, s3), s3test.NewProxy(tb, &s3test.Server{URL: sm.URL})
	s3Proxy.Latency, smProxy.Latency = latency, latency
	env := s3Proxy.Env(key) // the function's one set of credentials; kumo takes any
	env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = smProxy.URL
	env["CAIO_SERVER_KEY_ARN"] = arn
	env["CAIO_LICENSE_PUBLIC_KEY"] = licensekey.FormatPublicKey(pub.PublicKey)
	return env, is.Key, servercert.EncodePrivateKey(certified)
}

// BenchmarkColdStartInS3 is the activate function's cold start as it is
// deployed (deployedActivate, 20 ms added to every request to S3 and to
// Secrets Manager: a round trip in a region), with an empty cache
// directory (a new container's /tmp). Timed from the process's start to a
// genuine key's VALID answer, emulator's own start included.
func BenchmarkColdStartInS3(b *testing.B) {
	env, key, _ := deployedActivate(b, 20*time.Millisecond, nil)
	event := sample(b, "activate", "http-api-validate", key)
	bin := bootstrap(b, "activate")
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		env["CAIO_LICENSE_CACHE_DIR"] = b.TempDir()
		e := startEmulator(b, bin, env)
		status, body := e.invoke(b, event)
		total += time.Since(e.started)
		if status != 200 || !strings.Contains(string(body), `\"code\":\"VALID\"`) {
			b.Fatalf("%d %s\n%s", status, body, e.logs.String())
		}
		e.stop()
	}
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "activate-ms")
}

// The activate function's server key from Secrets Manager while its
// database loads from S3 (both at once at cold start): a genuine key is
// answered and signed; a secret with no value yet, or a key with no
// certificate, fails the cold start in one line that says what to do
// (it does not wait for ever); the key is never in the logs.
func TestActivateServerKeyFromSecretsManager(t *testing.T) {
	// Not parallel: the database is made with the S3 environment set (Setenv).
	bin := bootstrap(t, "activate")
	coldStart := func(env map[string]string, key string) (int, string, string) {
		env["CAIO_LICENSE_CACHE_DIR"] = t.TempDir()
		e := startEmulator(t, bin, env)
		status, body := e.invoke(t, sample(t, "activate", "http-api-validate", key))
		e.waitLogs("REPORT")
		return status, string(body), e.logs.String()
	}
	env, key, serverKey := deployedActivate(t, time.Millisecond, nil)
	if status, body, logs := coldStart(env, key); status != 200 || !strings.Contains(body, `\"code\":\"VALID\"`) || !strings.Contains(body, `"X-Caio-Signature"`) || strings.Contains(logs, serverKey) {
		t.Fatalf("%d %s\n%s", status, body, logs)
	}
	empty, other := "", servercert.EncodePrivateKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	for value, want := range map[*string]string{&empty: "cannot read the server key from Secrets Manager", &other: "has no certificate in this database"} {
		env, key, _ := deployedActivate(t, time.Millisecond, value)
		status, body, logs := coldStart(env, key)
		if status == 200 || !strings.Contains(logs, `"msg":"cold start failed","function":"activate","code":"CONFIG"`) || !strings.Contains(logs, want) || strings.Contains(logs, *value+`"`) && *value != "" {
			t.Fatalf("server key %q: %d %s\n%s", *value, status, body, logs)
		}
	}
}
