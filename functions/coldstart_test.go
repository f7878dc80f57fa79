package functions_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
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
