package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// emfLine is what CloudWatch reads from an EMF line.
type emfLine struct {
	AWS struct {
		Timestamp int64 `json:"Timestamp"`
		Metrics   []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct{ Name, Unit string }
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	fields map[string]any
}

func parseEMF(t *testing.T, out []byte) []emfLine {
	t.Helper()
	var lines []emfLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l emfLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		json.Unmarshal(sc.Bytes(), &l.fields)
		if l.AWS.Timestamp == 0 || len(l.AWS.Metrics) != 1 || l.AWS.Metrics[0].Namespace != metrics.Namespace {
			t.Fatalf("not an EMF line: %s", sc.Text())
		}
		// Every dimension named is a field of the line.
		for _, set := range l.AWS.Metrics[0].Dimensions {
			for _, d := range set {
				if _, ok := l.fields[d].(string); !ok {
					t.Fatalf("dimension %s missing from %s", d, sc.Text())
				}
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// The API's EMF lines count exactly the requests made, by route and code,
// and the refusals by code.
func TestEMFCountsTheCallsMade(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	store, err := sqlitestore.Open(context.Background(), f.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out bytes.Buffer
	api := httpapi.New(licensing.New(licensing.Config{Store: store, PublicKeys: keys}), slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	api.SetMetrics(metrics.NewEMF(&out, "Function", "activate"))
	call := func(path, body, instance string) httpapi.Response {
		h := http.Header{}
		if instance != "" {
			h.Set(contract.HeaderInstanceID, instance)
		}
		return api.Serve(context.Background(), httpapi.Request{Method: "POST", Path: path, Header: h, Body: []byte(body), RequestID: "r"})
	}
	key := `{"license_key":"` + f.Keys["roomy"] + `"}`
	want := map[[2]string]int{}
	wantRefusals := map[string]int{}
	for range 3 {
		r := call(contract.PathValidate, key, "")
		want[[2]string{"validate", string(r.Code)}]++
	}
	for _, body := range []string{`{"license_key":"CAIO-v1-forged"}`, `not json`} {
		r := call(contract.PathActivate, body, "i-1")
		want[[2]string{"activate", string(r.Code)}]++
		wantRefusals[string(r.Code)]++
	}
	r := call(contract.PathActivate, key, "i-1")
	want[[2]string{"activate", string(r.Code)}]++
	r = call("/nope", "", "")
	want[[2]string{"other", string(r.Code)}]++
	wantRefusals[string(r.Code)]++

	got := map[[2]string]int{}
	gotRefusals := map[string]int{}
	latencies := 0
	for _, l := range parseEMF(t, out.Bytes()) {
		if l.fields["Function"] != "activate" {
			t.Fatalf("line without the function: %v", l.fields)
		}
		switch name := l.AWS.Metrics[0].Metrics[0].Name; name {
		case metrics.Requests:
			got[[2]string{l.fields["Route"].(string), l.fields["Code"].(string)}] += int(l.fields[name].(float64))
		case metrics.Refusals:
			gotRefusals[l.fields["Code"].(string)] += int(l.fields[name].(float64))
		case metrics.RequestLatency:
			if l.AWS.Metrics[0].Metrics[0].Unit != "Milliseconds" || l.fields[name].(float64) <= 0 {
				t.Fatalf("latency line %v", l.fields)
			}
			latencies++
		}
	}
	if len(got) != len(want) || len(gotRefusals) != len(wantRefusals) || latencies != 7 {
		t.Fatalf("requests %v, want %v; refusals %v, want %v; %d latencies, want 7", got, want, gotRefusals, wantRefusals, latencies)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("requests %v: %d, want %d", k, got[k], n)
		}
	}
	for k, n := range wantRefusals {
		if gotRefusals[k] != n {
			t.Fatalf("refusals %s: %d, want %d", k, gotRefusals[k], n)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := httpapi.ParseProxies("10.0.0.0/8, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.9:1234", []string{"198.51.100.1"}, "203.0.113.9"},                    // not a proxy: its header is ignored
		{"10.1.2.3:1234", nil, "10.1.2.3"},                                               // a proxy without the header
		{"10.1.2.3:1234", []string{"198.51.100.1"}, "198.51.100.1"},                      // one hop
		{"10.1.2.3:1234", []string{"6.6.6.6, 198.51.100.1, 192.0.2.7"}, "198.51.100.1"},  // rightmost untrusted; the forged left is ignored
		{"10.1.2.3:1234", []string{"6.6.6.6", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"}, // several headers
		{"10.1.2.3:1234", []string{"garbage, 10.9.9.9"}, "10.9.9.9"},                     // a malformed hop stops the walk
		{"[::ffff:10.1.2.3]:1234", []string{"198.51.100.1"}, "198.51.100.1"},             // IPv4-mapped proxy
	} {
		if got := httpapi.ClientIP(tc.remote, tc.xff, trusted); got != tc.want {
			t.Errorf("ClientIP(%s, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if _, err := httpapi.ParseProxies("10.0.0.0/8,nonsense"); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}
