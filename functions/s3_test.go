package functions_test

import (
	"context"
	"fmt"
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
func TestTwoEmulatorsShareOneS3Database(t *testing.T) {
	srv := s3test.StartGofakes3(t)
	const key = "e2e/caio_licenses.db"
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
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 3, MaxServices: 1, MaxRequestsPerDay: 1})
	if err != nil {
		t.Fatal(err)
	}
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
