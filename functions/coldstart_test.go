package functions_test

import (
	"testing"
	"time"
)

// BenchmarkColdStart measures, under the emulator, the time from starting
// the process to the first response: the activate function (opening the
// database, parsing the public key, answering a validate) beside the
// smallest Go function built the same way. The ratio is reported too.
func BenchmarkColdStart(b *testing.B) {
	_, actEnv := newDB(b)
	var activate, baseline time.Duration
	event := sample(b, "activate", "http-api-validate", "CAIO-v1-CUST-001-x")
	measure := func(bin string, env map[string]string, payload []byte) time.Duration {
		e := startEmulator(b, bin, env)
		start := e.started
		status, body := e.invoke(b, payload)
		d := time.Since(start)
		if status != 200 {
			b.Fatalf("%d %s", status, body)
		}
		e.stop()
		return d
	}
	actBin, baseBin := bootstrap(b, "activate"), bootstrap(b, "baseline")
	b.ResetTimer()
	for b.Loop() {
		activate += measure(actBin, actEnv, event)
		baseline += measure(baseBin, nil, []byte(`{}`))
	}
	n := float64(b.N)
	b.ReportMetric(activate.Seconds()*1000/n, "activate-ms")
	b.ReportMetric(baseline.Seconds()*1000/n, "baseline-ms")
	b.ReportMetric(float64(activate)/float64(baseline), "ratio")
}
