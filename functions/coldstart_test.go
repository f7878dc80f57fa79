package functions_test

import (
	"context"
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

// BenchmarkColdStartInS3 is the activate function's cold start as it is
// deployed: the database in S3 (versitygw) and the server key in Secrets
// Manager (kumo), each behind a proxy that adds 20 ms to every request (a
// round trip in a region), with an empty cache directory (a new
// container's /tmp). Timed from the process's start to a genuine key's
// VALID answer, emulator's own start included.
func BenchmarkColdStartInS3(b *testing.B) {
	const key = "bench/caio_licenses.db"
	const latency = 20 * time.Millisecond
	s3 := s3test.StartVersity(b)
	store, svc, is := s3DatabaseOn(b, s3, key, 5)
	ctx := context.Background()
	pub, err := svc.PublicKey(ctx)
	if err != nil {
		b.Fatal(err)
	}
	serverKey, _, err := svc.CertifyServerKey(ctx, 30)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: "instance-001"}); err != nil {
		b.Fatal(err)
	}
	store.Close()
	sm := smtest.Start(b)
	arn := sm.Create(b, "caio/server-key", servercert.EncodePrivateKey(serverKey))
	s3Proxy, smProxy := s3test.NewProxy(b, s3), s3test.NewProxy(b, &s3test.Server{URL: sm.URL})
	s3Proxy.Latency, smProxy.Latency = latency, latency
	env := s3Proxy.Env(key) // the function's one set of credentials; kumo takes any
	env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = smProxy.URL
	env["CAIO_SERVER_KEY_ARN"] = arn
	env["CAIO_LICENSE_PUBLIC_KEY"] = licensekey.FormatPublicKey(pub.PublicKey)
	event := sample(b, "activate", "http-api-validate", is.Key)
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
