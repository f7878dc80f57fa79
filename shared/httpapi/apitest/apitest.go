// Package apitest holds the activation API's conformance checks, run
// against every transport: the net/http server, and API Gateway events
// under the Lambda runtime emulator.
package apitest

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/instanceid"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Secret is the fixture's signing secret.
const Secret = "1j2YhwWM6XUnAn28FnN96nYgeR8s9w7WYNLg8qqMByI=" // strong: a new signing key needs one

// Call is one HTTP request.
type Call struct {
	Method string
	Path   string
	Header map[string]string
	Body   string
}

// Reply is the response.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Caller sends a call through one transport.
type Caller func(t *testing.T, c Call) Reply

// Fixture is a database with licenses in every state.
type Fixture struct {
	Path      string
	PublicKey string
	// ServerKey is a certified server key (base64 seed, as certify-server-key prints it).
	ServerKey string
	// ExpiredServerKey is a server key whose certificate ended 30 days
	// ago, as a thief may hold one.
	ExpiredServerKey string
	// Keys by name: two-seats, roomy, suspended, revoked, expired (in the
	// database), unknown; one-seat, solo and revoke-me with one-minute leases;
	// expired-key, whose own expiry (in the key) has passed.
	Keys map[string]string
}

// NewFixture creates the database in dir.
func NewFixture(t testing.TB, dir string) *Fixture {
	t.Helper()
	ctx := context.Background()
	f := &Fixture{Path: filepath.Join(dir, "api.db"), Keys: map[string]string{}}
	store, err := sqlitestore.Open(ctx, f.Path, sqlitestore.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "apitest", Secret: Secret})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme Corp", "ops@acme.test"); err != nil {
		t.Fatal(err)
	}
	var leaseSeconds int64
	gen := func(name string, maxInstances int64) string {
		is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30,
			Features: []string{"analytics"}, MaxInstances: maxInstances, MaxServices: 10, MaxRequestsPerDay: 1000, LeaseSeconds: leaseSeconds})
		if err != nil {
			t.Fatal(err)
		}
		f.Keys[name] = is.Key
		return is.Key
	}
	gen("two-seats", 2)
	gen("roomy", 50)
	if _, err := svc.SetStatus(ctx, gen("suspended", 2), licensing.StatusSuspended, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetStatus(ctx, gen("revoked", 2), licensing.StatusRevoked, ""); err != nil {
		t.Fatal(err)
	}
	expired := gen("expired", 2)
	leaseSeconds = licensing.MinLeaseSeconds
	gen("one-seat", 1)
	gen("revoke-me", 2)
	gen("solo", 1)
	// Made 60 days ago for 30 days: the key itself says it has expired;
	// and a server key whose certificate ended with it.
	before := licensing.New(licensing.Config{Store: store, Actor: "apitest", Secret: Secret,
		Now: func() time.Time { return time.Now().Add(-60 * 24 * time.Hour) }})
	old, err := before.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30,
		MaxInstances: 2, MaxServices: 1, MaxRequestsPerDay: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.Keys["expired-key"] = old.Key
	oldServerKey, _, err := before.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	f.ExpiredServerKey = servercert.EncodePrivateKey(oldServerKey)
	pub, err := svc.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.PublicKey = licensekey.FormatPublicKey(pub.PublicKey)
	serverKey, _, err := svc.CertifyServerKey(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	f.ServerKey = servercert.EncodePrivateKey(serverKey)

	// A genuine key that this database never issued: minted in a copy.
	copyPath := filepath.Join(dir, "copy.db")
	if err := store.Backup(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	cp, err := sqlitestore.Open(ctx, copyPath, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	is, err := licensing.New(licensing.Config{Store: cp, Actor: "apitest", Secret: Secret}).Generate(ctx, licensing.GenerateRequest{
		CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1})
	cp.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.Keys["unknown"] = is.Key

	// Expire one license in the database, the online authority.
	db, err := sql.Open("sqlite3", f.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, _ := licensekey.Parse(expired)
	past := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	if _, err := db.Exec("UPDATE licenses SET expires_at = ? WHERE id = ?", past, p.Claims.LicenseID); err != nil {
		t.Fatal(err)
	}
	return f
}

// Signer is the fixture's server key with its certificate, for a server
// on the fixture's database.
func (f *Fixture) Signer(t testing.TB, svc *licensing.Service) *httpapi.Signer {
	t.Helper()
	key, err := servercert.ParsePrivateKey(f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := svc.ServerCertificate(context.Background(), key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return &httpapi.Signer{Key: key, Certificate: cert.Certificate, NotAfter: cert.NotAfter}
}

// EventCount counts the audit log, to prove that refused calls wrote nothing.
func (f *Fixture) EventCount(t testing.TB) int {
	t.Helper()
	db, err := sql.Open("sqlite3", f.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// answer is the API's JSON body, read as a client of the contract reads it.
type answer = contract.ResponseBody[licensekey.Claims, licensing.Activation]

func post(path, key string, header map[string]string, extra map[string]any) Call {
	body := map[string]any{"license_key": key}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return Call{Method: http.MethodPost, Path: path, Header: header, Body: string(b)}
}

// The routes, short for the tables below.
const (
	validate   = contract.PathValidate
	activate   = contract.PathActivate
	deactivate = contract.PathDeactivate
)

type step struct {
	name     string
	call     Call
	status   int
	code     string
	claims   bool   // the reply must carry the key's claims
	instance string // the activation the reply must name
	// early: refused before the server read a key and instance from the
	// request, so the signature names none.
	early bool
}

// Run runs the conformance checks through call against f. sourceIP is the
// caller address the transport reports.
func Run(t *testing.T, f *Fixture, call Caller, sourceIP string) {
	k := f.Keys
	inst := func(id string) map[string]string { return map[string]string{contract.HeaderInstanceID: id} }
	flow := []step{
		{"validate a valid key", post(validate, k["two-seats"], nil, nil), 200, "VALID", true, "", false},
		{"activate with the header", post(activate, k["two-seats"], inst("instance-001"), nil), 200, "VALID", true, "instance-001", false},
		{"a nonce may come in the body", post(validate, k["two-seats"], nil, map[string]any{"nonce": "body-nonce"}), 200, "VALID", true, "", false},
		{"header wins over body", post(activate, k["two-seats"], inst("instance-002"), map[string]any{"instance_id": "from-body"}), 200, "VALID", true, "instance-002", false},
		{"re-activation refreshes", post(activate, k["two-seats"], inst("instance-001"), nil), 200, "VALID", true, "instance-001", false},
		{"body instance id alone", post(validate, k["two-seats"], nil, map[string]any{"instance_id": "instance-002"}), 200, "VALID", true, "instance-002", false},
		{"an empty header does not override the body", post(validate, k["two-seats"], inst(""), map[string]any{"instance_id": "instance-002"}), 200, "VALID", true, "instance-002", false},
		{"limit holds", post(activate, k["two-seats"], inst("instance-003"), nil), 409, "TOO_MANY_INSTANCES", true, "", false},
		{"older client without instance id", post(activate, k["roomy"], nil, nil), 200, "VALID", true, "ip:" + sourceIP, false},
		{"deactivate needs an instance id", post(deactivate, k["two-seats"], nil, nil), 400, "INSTANCE_ID_REQUIRED", false, "", false},
		{"deactivate gives a seat back", post(deactivate, k["two-seats"], inst("instance-001"), nil), 200, "DEACTIVATED", true, "instance-001", false},
		{"deactivate again is harmless", post(deactivate, k["two-seats"], inst("instance-001"), nil), 200, "DEACTIVATED", true, "instance-001", false},
		{"a seat given back stays taken until its lease ends", post(activate, k["two-seats"], inst("instance-003"), nil), 409, "TOO_MANY_INSTANCES", true, "", false},
		{"validate of a deactivated instance", post(validate, k["two-seats"], inst("instance-001"), nil), 409, "NO_SEAT", true, "", false},
		{"the instance takes its own seat back", post(activate, k["two-seats"], inst("instance-001"), nil), 200, "VALID", true, "instance-001", false},
		{"validate of an instance never seen", post(validate, k["roomy"], inst("never-activated"), nil), 409, "NO_SEAT", true, "", false},
		{"NFD spelling activates", post(activate, k["roomy"], nil, map[string]any{"instance_id": "cafe\u0301-1"}), 200, "VALID", true, "caf\u00e9-1", false},
		{"NFC spelling is the same seat", post(validate, k["roomy"], inst("caf\u00e9-1"), nil), 200, "VALID", true, "caf\u00e9-1", false},
		{"suspended", post(activate, k["suspended"], inst("i-1"), nil), 403, "SUSPENDED", true, "", false},
		{"revoked", post(validate, k["revoked"], nil, nil), 403, "REVOKED", true, "", false},
		{"expired", post(activate, k["expired"], inst("i-1"), nil), 403, "EXPIRED", true, "", false},
		{"genuine but unknown key", post(validate, k["unknown"], nil, nil), 404, "NOT_FOUND", false, "", false},
	}
	for _, s := range flow {
		check(t, f, call, s, sourceIP)
	}

	before := f.EventCount(t)
	long := strings.Repeat("i", 129)
	tampered := k["roomy"][:len(k["roomy"])-2] + "xx"
	bad := []step{
		{"tampered key", post(activate, tampered, inst("i-9"), nil), 403, "INVALID_KEY", false, "", false},
		{"garbage key", post(activate, "CAIO-v1-nope", inst("i-9"), nil), 403, "INVALID_KEY", false, "", false},
		{"malformed JSON", Call{Method: "POST", Path: activate, Body: `{"license_key": "CAIO-v1-`}, 400, "BAD_REQUEST", false, "", true},
		{"not an object", Call{Method: "POST", Path: activate, Body: `["CAIO-v1-x"]`}, 400, "BAD_REQUEST", false, "", true},
		{"wrong type", Call{Method: "POST", Path: activate, Body: `{"license_key": 42}`}, 400, "BAD_REQUEST", false, "", true},
		{"missing key", Call{Method: "POST", Path: activate, Body: `{"instance_id": "i-9"}`}, 400, "BAD_REQUEST", false, "", true},
		{"empty body", Call{Method: "POST", Path: activate}, 400, "BAD_REQUEST", false, "", true},
		{"trailing data", Call{Method: "POST", Path: validate, Body: `{"license_key": "x"} {}`}, 400, "BAD_REQUEST", false, "", true},
		{"instance id too long", post(activate, k["roomy"], inst(long), nil), 400, "BAD_REQUEST", false, "", false},
		{"instance id with control characters", post(activate, k["roomy"], nil, map[string]any{"instance_id": "i\u0007\n9"}), 400, "BAD_REQUEST", false, "", false},
		{"blank instance id", post(deactivate, k["roomy"], nil, map[string]any{"instance_id": "  "}), 400, "BAD_REQUEST", false, "", false},
		{"bidi override in the header", post(activate, k["roomy"], inst("host‮gpj.exe"), nil), 400, "BAD_REQUEST", false, "", false},
		{"zero-width space in the body", post(activate, k["roomy"], nil, map[string]any{"instance_id": "host​name"}), 400, "BAD_REQUEST", false, "", false},
		{"line separator", post(activate, k["roomy"], nil, map[string]any{"instance_id": "host name"}), 400, "BAD_REQUEST", false, "", false},
		{"instance id over 128 bytes", post(activate, k["roomy"], nil, map[string]any{"instance_id": strings.Repeat("é", 65)}), 400, "BAD_REQUEST", false, "", false},
		{"invalid nonce header", post(activate, k["roomy"], map[string]string{contract.HeaderInstanceID: "nonce-victim", contract.HeaderNonce: "has space"}, nil), 400, "BAD_REQUEST", false, "", true},
		{"invalid nonce in the body", post(activate, k["roomy"], inst("nonce-victim"), map[string]any{"nonce": strings.Repeat("n", 200)}), 400, "BAD_REQUEST", false, "", true},
		{"key with a line break inside", post(activate, k["roomy"][:100]+"\r\n"+k["roomy"][100:], inst("i-9"), nil), 403, "INVALID_KEY", false, "", false},
		{"body over 64 KiB", Call{Method: "POST", Path: activate, Body: `{"license_key": "` + strings.Repeat("A", 70<<10) + `"}`}, 413, "BODY_TOO_LARGE", false, "", true},
		{"Hangul filler instance id", post(activate, k["roomy"], inst("\u3164"), nil), 400, "BAD_REQUEST", false, "", false},
		{"halfwidth Hangul filler", post(activate, k["roomy"], nil, map[string]any{"instance_id": "\uffa0\uffa0"}), 400, "BAD_REQUEST", false, "", false},
		{"Hangul choseong filler inside", post(activate, k["roomy"], inst("node\u115f1"), nil), 400, "BAD_REQUEST", false, "", false},
		{"braille blank", post(activate, k["roomy"], inst("\u2800"), nil), 400, "BAD_REQUEST", false, "", false},
		{"lone combining mark", post(activate, k["roomy"], nil, map[string]any{"instance_id": "\u0301"}), 400, "BAD_REQUEST", false, "", false},
		{"mark after a space", post(activate, k["roomy"], nil, map[string]any{"instance_id": "node \u0301x"}), 400, "BAD_REQUEST", false, "", false},
		{"variation selector", post(activate, k["roomy"], inst("node\ufe0f"), nil), 400, "BAD_REQUEST", false, "", false},
		{"unknown route", post("/api/v1/licensing/steal", k["roomy"], nil, nil), 404, "UNKNOWN_ROUTE", false, "", true},
		{"wrong method", Call{Method: "GET", Path: activate}, 405, "METHOD_NOT_ALLOWED", false, "", true},
	}
	for _, s := range bad {
		check(t, f, call, s, sourceIP)
	}
	if after := f.EventCount(t); after != before {
		t.Errorf("refused calls wrote %d events", after-before)
	}
}

// subject is the key and instance a request is about, as the server reads
// them: the instance header unless empty, else the body's instance_id, in
// NFC; an activation without one is the caller's address.
func subject(c Call, sourceIP string) (key, instance string) {
	var b contract.RequestBody
	json.Unmarshal([]byte(c.Body), &b)
	instance = b.InstanceID
	if h := c.Header[contract.HeaderInstanceID]; h != "" {
		instance = h
	}
	instance = instanceid.Normalize(instance)
	if instance == "" && c.Path == activate && sourceIP != "" {
		instance = "ip:" + sourceIP
	}
	return b.LicenseKey, instance
}

func check(t *testing.T, f *Fixture, call Caller, s step, sourceIP string) {
	t.Helper()
	nonce := fmt.Sprintf("nonce-%d", time.Now().UnixNano())
	c := s.call
	c.Header = map[string]string{contract.HeaderNonce: nonce}
	var inBody contract.RequestBody
	if json.Unmarshal([]byte(c.Body), &inBody); inBody.Nonce != "" {
		nonce, c.Header = inBody.Nonce, map[string]string{} // the body's nonce alone
	}
	for k, v := range s.call.Header {
		c.Header[k] = v
	}
	if n := s.call.Header[contract.HeaderNonce]; n != "" || (inBody.Nonce != "" && !servercert.ValidNonce(inBody.Nonce)) {
		nonce = "" // an invalid nonce is refused, and the refusal signed without it
	}
	c.Header[contract.HeaderSignatureVersion] = contract.SignatureVersion
	r := call(t, c)
	asked := servercert.Asked{Route: c.Path, Nonce: nonce}
	if !s.early {
		asked.Key, asked.Instance = subject(s.call, sourceIP)
	}
	verifySigned(t, f, s.name, asked, r)
	var res answer
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Errorf("%s: body is not JSON: %q", s.name, r.Body)
		return
	}
	if r.Status != s.status || res.Code != s.code {
		t.Errorf("%s: got %d %s (%s), want %d %s", s.name, r.Status, res.Code, res.Detail, s.status, s.code)
		return
	}
	if res.Valid != (s.status == 200) || res.Detail == "" || strings.Contains(res.Detail, "\n") {
		t.Errorf("%s: valid=%v detail=%q", s.name, res.Valid, res.Detail)
	}
	if s.claims && (res.Claims == nil || res.Claims.CustomerID != "CUST-001") {
		t.Errorf("%s: reply lacks the key's claims: %s", s.name, r.Body)
	}
	if s.instance != "" && (res.Activation == nil || res.Activation.InstanceID != s.instance) {
		t.Errorf("%s: reply names activation %+v, want %s", s.name, res.Activation, s.instance)
	}
	if strings.Contains(string(r.Body), "CAIO-v1-CUST-001-") || strings.Contains(string(r.Body), "goroutine") {
		t.Errorf("%s: reply echoes a key or a stack trace: %s", s.name, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", s.name, ct)
	}
}

// verifySigned checks a reply as a CAIO instance would: the certificate
// against the fixture's license public key, the signature over status,
// route, nonce, time, the key and instance asked about, and body, and any
// lease against the server key.
func verifySigned(t *testing.T, f *Fixture, name string, asked servercert.Asked, r Reply) {
	t.Helper()
	keys, _ := licensekey.ParsePublicKeys(f.PublicKey)
	cert, _, err := servercert.VerifyAnswer(r.Header, r.Status, asked, r.Body, keys, time.Now())
	if err != nil {
		t.Errorf("%s: the answer does not verify: %v", name, err)
		return
	}
	var res answer
	json.Unmarshal(r.Body, &res)
	if res.Lease != "" {
		l, err := lease.Verify(res.Lease, cert.PublicKey)
		if err != nil || res.LeaseInfo == nil || !l.ExpiresAt.Equal(res.LeaseInfo.ExpiresAt) {
			t.Errorf("%s: lease %+v does not verify (%v) or disagrees with lease_info", name, l, err)
		}
	}
}

// Service is a licensing service holding the secret, on a new database in
// dir with one customer, CUST-001 (Acme Corp, ops@acme.test); now is its
// clock (nil: the real one). The database closes with the test.
func Service(tb testing.TB, dir string, now func() time.Time) (*licensing.Service, licensing.Store) {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "licenses.db"), sqlitestore.Options{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: Secret, Now: now})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme Corp", "ops@acme.test"); err != nil {
		tb.Fatal(err)
	}
	return svc, store
}

// LargeDB creates a database of n licenses for benchmarks and returns a
// service on it (with the secret) and the key of one license with room
// for 100,000 instances. The other licenses are bulk-inserted in one
// transaction: minting each would dominate set-up without changing what
// is measured.
func LargeDB(tb testing.TB, dir string, n int) (*licensing.Service, licensing.Store, string) {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "large.db"), sqlitestore.Options{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	svc := licensing.New(licensing.Config{Store: store, Actor: "bench", Secret: Secret})
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme", ""); err != nil {
		tb.Fatal(err)
	}
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365,
		MaxInstances: 100000, MaxServices: 100, MaxRequestsPerDay: 10000})
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	err = store.Update(ctx, func(tx licensing.Tx) error {
		for i := 1; i < n; i++ {
			lic := is.License
			lic.ID = fmt.Sprintf("%032x", i)
			lic.ExpiresAt = now.Add(time.Duration(i%400) * 24 * time.Hour)
			if err := tx.InsertLicense(lic); err != nil {
				return err
			}
			digest := fmt.Sprintf("%064x", i)
			if err := tx.InsertLicenseKey(licensing.LicenseKey{Digest: digest, LicenseID: lic.ID, Sealed: []byte(digest), IssuedAt: now, ExpiresAt: lic.ExpiresAt}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, store, is.Key
}
