package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/s3store/s3test"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// Two activate functions under two emulators share one database object in
// S3; their activations of one license respect its limit.
// s3Database makes an S3 database at key on a fresh gofakes3 with one
// customer and one three-seat license; the caller closes the store.
func s3Database(t *testing.T, key string) (*s3test.Server, *s3store.Store, *licensing.Service, licensing.Issued) {
	t.Helper()
	srv := s3test.StartGofakes3(t)
	store, svc, is := s3DatabaseOn(t, srv, key, 3)
	return srv, store, svc, is
}

// s3DatabaseOn is s3Database on srv, with a license of seats seats.
func s3DatabaseOn(t testing.TB, srv *s3test.Server, key string, seats int64) (*s3store.Store, *licensing.Service, licensing.Issued) {
	t.Helper()
	srv.SetEnv(t, key)
	ctx := context.Background()
	store, err := s3store.Open(ctx, "s3://"+s3test.Bucket+"/"+key, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme", ""); err != nil {
		t.Fatal(err)
	}
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: seats, MaxServices: 1, MaxRequestsPerDay: 1})
	if err != nil {
		t.Fatal(err)
	}
	return store, svc, is
}

func TestTwoEmulatorsShareOneS3Database(t *testing.T) {
	const key = "e2e/caio_licenses.db"
	srv, store, svc, is := s3Database(t, key)
	ctx := context.Background()
	pub, _ := svc.PublicKey(ctx)
	serverKey, _, err := svc.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	var emulators []*emulator
	for range 2 {
		env := srv.Env(key)
		env["CAIO_LICENSE_PUBLIC_KEY"] = licensekey.FormatPublicKey(pub.PublicKey)
		env["CAIO_SERVER_KEY"] = servercert.EncodePrivateKey(serverKey)
		env["CAIO_LICENSE_CACHE_DIR"] = t.TempDir() // each Lambda has its own /tmp
		emulators = append(emulators, startEmulator(t, bootstrap(t, "activate"), env))
	}
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for n, e := range emulators {
		wg.Go(func() {
			for i := range 6 {
				ev := sample(t, "activate", "http-api-activate", is.Key)
				ev = []byte(replaceInstance(string(ev), fmt.Sprintf("e%d-i%d", n, i)))
				status, r := decodeAPI(t, e, ev)
				mu.Lock()
				codes[fmt.Sprintf("%d %s", status, r.Code)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes["200 VALID"] != 3 || codes["409 TOO_MANY_INSTANCES"] != 9 {
		t.Fatalf("outcomes %v; want exactly 3 activations and 9 refusals", codes)
	}
	// The functions' EMF lines count exactly these calls and commits.
	emf := map[string]float64{}
	for _, e := range emulators {
		e.waitLogs(`"Requests"`)
		for _, line := range strings.Split(e.logs.String(), "\n") {
			var m map[string]any
			if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &m) != nil || m["_aws"] == nil {
				continue
			}
			if m["Function"] != "activate" {
				t.Fatalf("EMF line without its function: %s", line)
			}
			switch {
			case m["Requests"] != nil:
				emf["requests "+m["Route"].(string)+" "+m["Code"].(string)] += m["Requests"].(float64)
			case m["Refusals"] != nil:
				emf["refusals "+m["Code"].(string)] += m["Refusals"].(float64)
			case m["S3Commits"] != nil:
				emf["commits "+m["Outcome"].(string)] += m["S3Commits"].(float64)
			}
		}
	}
	if emf["requests activate VALID"] != 3 || emf["requests activate TOO_MANY_INSTANCES"] != 9 ||
		emf["refusals TOO_MANY_INSTANCES"] != 9 || emf["commits committed"] != 3 {
		t.Fatalf("EMF lines count %v; want 3 valid activations, 9 refusals, 3 commits", emf)
	}
	check, err := s3store.Open(ctx, "s3://"+s3test.Bucket+"/"+key, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	acts, err := licensing.New(licensing.Config{Store: check}).Activations(ctx, "")
	if err != nil || len(acts) != 3 {
		t.Fatalf("%d activations stored (%v), want 3", len(acts), err)
	}
}

func replaceInstance(event, id string) string {
	const from = `"x-caio-instance-id": "instance-001"`
	if !strings.Contains(event, from) {
		panic("sample changed: " + from + " not found")
	}
	return strings.Replace(event, from, `"x-caio-instance-id": "`+id+`"`, 1)
}

// The stats function, asked for the report, writes it to the bucket under
// reports/ and returns a presigned link that serves the page.
func TestStatsFunctionWritesTheReport(t *testing.T) {
	const key = "e2e/caio_licenses.db"
	srv, store, _, _ := s3Database(t, key)
	store.Close()
	env := srv.Env(key)
	env["CAIO_LICENSE_CACHE_DIR"] = t.TempDir()
	e := startEmulator(t, bootstrap(t, "stats"), env)
	var out struct {
		Total  int `json:"total"`
		Report struct {
			Location string `json:"location"`
			URL      string `json:"url"`
		} `json:"report"`
	}
	e.invokeJSON(t, []byte(`{"report": true}`), &out)
	if out.Total != 1 || !strings.HasPrefix(out.Report.Location, "s3://"+s3test.Bucket+"/reports/") || !strings.Contains(out.Report.URL, "X-Amz-Signature=") {
		t.Fatalf("stats with report: %+v", out)
	}
	resp, err := http.Get(out.Report.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(page), "CAIO licensing report") || !strings.Contains(string(page), `data-metric="total">1<`) {
		t.Fatalf("the link serves %d: %.300s", resp.StatusCode, page)
	}
	if strings.Contains(e.logs.String(), "X-Amz-Signature") {
		t.Fatal("the function logged the presigned link")
	}
}
