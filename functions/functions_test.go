package functions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

const secret = "x0SzekPkJunG17cIdIcF/FHvWnH3L74nJqKDUZF2s2Y=" // strong: a new signing key needs one

// newDB creates a database with customer CUST-001, a signing key and a
// certified server key, and returns its path and the activate function's
// environment on it (the pinned public key, the server key).
func newDB(t testing.TB) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "licenses.db")
	store, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme Corp", "ops@acme.test"); err != nil {
		t.Fatal(err)
	}
	pub, err := svc.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, _, err := svc.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	return path, map[string]string{"CAIO_LICENSE_DB_PATH": path, "CAIO_LICENSE_PUBLIC_KEY": licensekey.FormatPublicKey(pub.PublicKey),
		"CAIO_SERVER_KEY": servercert.EncodePrivateKey(serverKey)}
}

// issueKey mints a license of CUST-001 in the database at db (made by
// newDB), with instances holding a seat on it.
func issueKey(t testing.TB, db string, r licensing.GenerateRequest, instances ...string) string {
	t.Helper()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret})
	r.CustomerID = "CUST-001"
	is, err := svc.Generate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range instances {
		if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: id}); err != nil {
			t.Fatal(err)
		}
	}
	return is.Key
}

// v2Caller sends API calls as HTTP API (payload 2.0) events built on the sample.
func v2Caller(e *emulator) apitest.Caller {
	return func(t *testing.T, c apitest.Call) apitest.Reply {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(sample(t, "activate", "http-api-activate", ""), &ev); err != nil {
			t.Fatal(err)
		}
		ev.RawPath, ev.RouteKey = c.Path, c.Method+" "+c.Path
		ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = c.Method, c.Path
		ev.Headers = map[string]string{"content-type": "application/json"}
		for k, v := range c.Header {
			ev.Headers[strings.ToLower(k)] = v // API Gateway lower-cases header names
		}
		ev.Body = c.Body
		raw, _ := json.Marshal(ev)
		status, body := e.invoke(t, raw)
		if status != 200 {
			t.Fatalf("emulator answered %d: %s", status, body)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(body, &resp); err != nil || resp.StatusCode == 0 {
			t.Fatalf("not an HTTP API response: %s", body)
		}
		h := http.Header{}
		for k, v := range resp.Headers {
			h.Set(k, v)
		}
		return apitest.Reply{Status: resp.StatusCode, Header: h, Body: []byte(resp.Body)}
	}
}

func TestActivateFunctionConformance(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	e := startEmulator(t, bootstrap(t, "activate"), map[string]string{
		"CAIO_LICENSE_DB_PATH": f.Path, "CAIO_LICENSE_PUBLIC_KEY": f.PublicKey, "CAIO_SERVER_KEY": f.ServerKey,
	})
	apitest.Run(t, f, v2Caller(e), "203.0.113.10")
	logs := e.logs.String()
	if strings.Contains(logs, "CAIO-v1-CUST-001-") {
		t.Fatal("function logs hold a license key")
	}
	if !e.waitLogs(`"function":"activate"`, `"request_id":"LV7fzho-PHcEJPw="`, `"code":"TOO_MANY_INSTANCES"`) {
		t.Fatalf("logs lack the function, request id or outcome code:\n%s", e.logs.String())
	}
}

type apiResult struct {
	Valid      bool   `json:"valid"`
	Code       string `json:"code"`
	Activation struct {
		InstanceID string `json:"instance_id"`
		IPAddress  string `json:"ip_address"`
	} `json:"activation"`
}

// decodeAPI reads an API Gateway response (either version) and its body.
func decodeAPI(t *testing.T, e *emulator, event []byte) (int, apiResult) {
	t.Helper()
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	e.invokeJSON(t, event, &resp)
	var r apiResult
	if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
		t.Fatalf("body %q", resp.Body)
	}
	return resp.StatusCode, r
}

// generate → activate → validate → deactivate → stats, every sample event
// of every function, under the emulator.
func TestRoundTripWithEverySample(t *testing.T) {
	db, actEnv := newDB(t)
	env := map[string]string{"CAIO_LICENSE_DB_PATH": db}
	withSecret := map[string]string{"CAIO_LICENSE_DB_PATH": db, "CAIO_LICENSE_SECRET": secret}
	generate := startEmulator(t, bootstrap(t, "generate"), withSecret)
	distribute := startEmulator(t, bootstrap(t, "distribute"), withSecret)
	activate := startEmulator(t, bootstrap(t, "activate"), actEnv)
	stats := startEmulator(t, bootstrap(t, "stats"), env)
	reminders := startEmulator(t, bootstrap(t, "reminders"), env)

	var issued struct {
		Key    string            `json:"license_key"`
		Claims licensekey.Claims `json:"claims"`
	}
	generate.invokeJSON(t, sample(t, "generate", "direct", ""), &issued)
	if !strings.HasPrefix(issued.Key, "CAIO-v1-CUST-001-") || issued.Claims.MaxInstances != 5 || len(issued.Claims.Features) != 2 {
		t.Fatalf("generate: %+v", issued)
	}
	want := map[string]struct {
		status   int
		code     string
		instance string
	}{
		"http-api-activate":                {200, "VALID", "instance-001"},
		"http-api-validate":                {200, "VALID", "instance-001"},
		"http-api-activate-no-instance-id": {200, "VALID", "ip:203.0.113.10"},
		"rest-api-activate":                {200, "VALID", "instance-002"},
		"http-api-deactivate":              {200, "DEACTIVATED", "instance-001"},
	}
	order := []string{"http-api-activate", "http-api-validate", "http-api-activate-no-instance-id", "rest-api-activate", "http-api-deactivate"}
	if len(samples(t, "activate")) != len(order) {
		t.Fatalf("activate samples %v: each needs a check here", samples(t, "activate"))
	}
	for _, name := range order {
		status, r := decodeAPI(t, activate, sample(t, "activate", name, issued.Key))
		w := want[name]
		if status != w.status || r.Code != w.code || r.Activation.InstanceID != w.instance {
			t.Fatalf("%s: %d %+v, want %+v", name, status, r, w)
		}
	}

	var st licensing.Stats
	stats.invokeJSON(t, sample(t, "stats", "direct", ""), &st)
	// instance-001 deactivated itself: its seat is taken until its lease
	// ends (a copy of the lease verifies until then), beside the other two.
	if st.Total != 1 || st.Active != 1 || st.ActiveInstances != 3 || st.Seats.Deactivated != 0 {
		t.Fatalf("stats after the round trip: %+v", st)
	}

	var dist struct {
		Key      string                          `json:"license_key"`
		License  struct{ Recipient string }      `json:"license"`
		Delivery struct{ Status, Detail string } `json:"delivery"`
	}
	distribute.invokeJSON(t, sample(t, "distribute", "direct", ""), &dist)
	if dist.License.Recipient != "customer@example.com" || dist.Delivery.Status != "skipped" || !strings.HasPrefix(dist.Key, "CAIO-v1-") {
		t.Fatalf("distribute: %+v", dist)
	}

	// One license due within 30 days, for the reminders samples to find.
	var soon struct {
		Key string `json:"license_key"`
	}
	generate.invokeJSON(t, []byte(`{"customer_id":"CUST-001","tier":"standard","expires_days":5}`), &soon)
	for _, name := range samples(t, "reminders") {
		var found struct {
			Thresholds []int `json:"thresholds"`
			Found      int   `json:"found"`
			Reminders  []licensing.Reminder
		}
		reminders.invokeJSON(t, sample(t, "reminders", name, ""), &found)
		if found.Found != 1 || found.Reminders[0].DaysLeft != 5 || found.Reminders[0].Email != "ops@acme.test" || len(found.Thresholds) != 3 {
			t.Fatalf("reminders %s: %+v", name, found)
		}
	}
}

func TestRefusalsAndErrorsUnderTheEmulator(t *testing.T) {
	db, actEnv := newDB(t)
	generate := startEmulator(t, bootstrap(t, "generate"), map[string]string{"CAIO_LICENSE_DB_PATH": db, "CAIO_LICENSE_SECRET": secret})
	activate := startEmulator(t, bootstrap(t, "activate"), actEnv)

	// Refusals are results with a code, not crashes.
	refusals := map[string]struct {
		event string
		code  string
	}{
		"unknown customer":     {`{"customer_id":"CUST-404","tier":"standard"}`, "NOT_FOUND"},
		"misspelt field":       {`{"customer_id":"CUST-001","tier":"standard","max_instance":5}`, "BAD_REQUEST"},
		"wrong type":           {`{"customer_id":"CUST-001","tier":"standard","max_instances":"five"}`, "BAD_REQUEST"},
		"zero limit":           {`{"customer_id":"CUST-001","tier":"standard","max_instances":0}`, "BAD_REQUEST"},
		"an API Gateway event": {string(sample(t, "activate", "http-api-activate", "x")), "BAD_REQUEST"},
		"not an object":        {`[1, 2]`, "BAD_REQUEST"},
		"email on generate":    {`{"customer_id":"CUST-001","tier":"standard","email":"a@b.test"}`, "BAD_REQUEST"},
	}
	for name, c := range refusals {
		t.Run(name, func(t *testing.T) {
			var r struct{ Code, Detail string }
			generate.invokeJSON(t, []byte(c.event), &r)
			if r.Code != c.code || r.Detail == "" {
				t.Fatalf("got %+v, want code %s", r, c.code)
			}
		})
	}

	// Events the activate function does not take are errors, not panics.
	for name, event := range map[string]string{
		"eventbridge event":    string(sample(t, "reminders", "eventbridge-rule", "")),
		"direct JSON":          `{"license_key":"x"}`,
		"not JSON":             `nonsense`,
		"malformed HTTP event": `{"version":"2.0","routeKey":"POST /x","requestContext":{"http":"not an object"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			status, body := activate.invoke(t, []byte(event))
			var lambdaErr struct{ ErrorMessage, ErrorType string }
			json.Unmarshal(body, &lambdaErr)
			if status == 502 || lambdaErr.ErrorType == "" || !strings.Contains(lambdaErr.ErrorMessage, "BAD_REQUEST") {
				t.Fatalf("got %d %s, want a handler error naming BAD_REQUEST", status, body)
			}
		})
	}

	// A failure of the system (here: the wrong secret) is a Lambda error,
	// so that retries and alarms see it; it carries the code, not the secret.
	wrong := startEmulator(t, bootstrap(t, "generate"), map[string]string{"CAIO_LICENSE_DB_PATH": db, "CAIO_LICENSE_SECRET": "not-the-right-secret-at-all"})
	status, body := wrong.invoke(t, sample(t, "generate", "direct", ""))
	if status != 200 || !strings.Contains(string(body), `"errorType"`) || !strings.Contains(string(body), "SECRET_MISMATCH") || strings.Contains(string(body), "not-the-right") {
		t.Fatalf("wrong secret: %d %s", status, body)
	}
	if strings.Contains(wrong.logs.String(), "not-the-right-secret") {
		t.Fatal("the secret appears in the logs")
	}

	// A function without its configuration fails at cold start, saying what to set.
	bare := startEmulator(t, bootstrap(t, "activate"), map[string]string{"CAIO_LICENSE_DB_PATH": db})
	if status, _ := bare.invoke(t, []byte(`{}`)); status != 502 {
		t.Fatalf("cold start without a public key answered %d", status)
	}
	if !bare.waitLogs(`"code":"CONFIG"`, "CAIO_LICENSE_PUBLIC_KEY") {
		t.Fatalf("cold start failure not explained:\n%s", bare.logs.String())
	}
}
