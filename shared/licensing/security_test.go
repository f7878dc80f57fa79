package licensing_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretbox"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

const otherSecret = "mQ2n0lUw3v9oZbJc1xQeTq8KdYh7s4GfP6aRtLzE5Ck=" // strong too

// warnings collects what a service warns about.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) add(s string) { w.mu.Lock(); w.got = append(w.got, s); w.mu.Unlock() }
func (w *warnings) text() string { w.mu.Lock(); defer w.mu.Unlock(); return strings.Join(w.got, "\n") }

func newBareEnv(t *testing.T) (*sqlitestore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "licenses.db")
	store, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, path
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The attack: a leaked database plus a guessable secret gives the signing
// key. Now a signing key is never created under such a secret (with the
// policy the CLI and the minting functions use; without any, a service
// still refuses secrets under 32 characters).
func TestNewSigningKeyRefusesWeakSecrets(t *testing.T) {
	for _, weak := range []string{"a", strings.Repeat("a", 16), strings.Repeat("a", 40), "licensesecretforcaio2026password"} {
		store, _ := newBareEnv(t)
		svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: weak, SecretPolicy: secretstrength.Check})
		ctx := context.Background()
		if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme", ""); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1})
		wantCode(t, err, licensing.CodeWeakSecret)
		if !strings.Contains(err.Error(), "new-secret") {
			t.Errorf("%q: the refusal does not say how to make a good secret: %v", weak, err)
		}
		_, err = svc.PublicKey(ctx)
		wantCode(t, err, licensing.CodeWeakSecret)
		var keys int
		store.View(ctx, func(tx licensing.Tx) error {
			ks, err := tx.SigningKeys()
			keys = len(ks)
			return err
		})
		if keys != 0 {
			t.Fatalf("%q: a signing key was created under a weak secret", weak)
		}
	}
}

// A new database seals with the stored, current key derivation.
func TestNewDatabaseStoresItsKDF(t *testing.T) {
	store, path := newBareEnv(t)
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret})
	if _, err := svc.PublicKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	var params string
	if err := rawDB(t, path).QueryRow("SELECT value FROM settings WHERE name = 'kdf_params'").Scan(&params); err != nil {
		t.Fatal(err)
	}
	kdf, err := secretbox.ParseKDF(params)
	if err != nil || kdf != secretbox.DefaultKDF || kdf.Memory < 64*1024 {
		t.Fatalf("stored parameters %q (%+v, %v), want %v with at least 64 MiB", params, kdf, err, secretbox.DefaultKDF)
	}
}

// legacyDatabase builds what an earlier build left: a signing key sealed
// under a weak secret, with scrypt and no stored parameters, and a license.
func legacyDatabase(t *testing.T, weak string) (*sqlitestore.Store, string, string) {
	t.Helper()
	store, path := newBareEnv(t)
	db := rawDB(t, path)
	var salt []byte
	if err := db.QueryRow("SELECT value FROM settings WHERE name = 'kdf_salt'").Scan(&salt); err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.DeriveWith(secretbox.LegacyKDF, weak, salt)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	kid := licensekey.KeyID(pub)
	_, err = db.Exec("INSERT INTO signing_keys (key_id, public_key, sealed_private_key, created_at) VALUES (?, ?, ?, '2025-01-01T00:00:00Z')",
		kid, []byte(pub), box.Seal(priv.Seed(), []byte("signing-key:"+kid)))
	if err != nil {
		t.Fatal(err)
	}
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: weak})
	ctx := context.Background()
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme", ""); err != nil {
		t.Fatal(err)
	}
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1})
	if err != nil {
		t.Fatalf("a legacy database stops working: %v", err)
	}
	return store, licensekey.FormatPublicKey(pub), is.Key
}

// A database sealed under a weak secret keeps working, warns on each use,
// and rotate-secret moves it to a strong secret and today's derivation
// without changing a license key or the public key.
func TestWeakLegacyDatabaseWarnsThenRotates(t *testing.T) {
	ctx := context.Background()
	store, pub, key := legacyDatabase(t, "a")
	var w warnings
	weak := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: "a", Warn: w.add})
	if _, err := weak.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.text(), "weak secret") || !strings.Contains(w.text(), "rotate-secret") {
		t.Fatalf("no warning naming rotate-secret: %q", w.text())
	}
	if _, err := weak.RotateSecret(ctx, "b"); licensing.ErrorCode(err) != licensing.CodeWeakSecret {
		t.Fatalf("rotating to a weak secret: %v, want WEAK_SECRET", err)
	}
	res, err := weak.RotateSecret(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if res.SigningKeys != 1 || res.LicenseKeys != 2 || res.KDF != secretbox.DefaultKDF.String() {
		t.Fatalf("rotation result %+v", res)
	}

	// The old secret no longer opens anything.
	old := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: "a"})
	_, err = old.Export(ctx)
	wantCode(t, err, licensing.CodeSecretMismatch)
	_, err = old.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1})
	wantCode(t, err, licensing.CodeSecretMismatch)

	// The new one does, with no warning; keys and public key are unchanged.
	var w2 warnings
	strong := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret, Warn: w2.add})
	info, err := strong.PublicKey(ctx)
	if err != nil || licensekey.FormatPublicKey(info.PublicKey) != pub || !info.Verified {
		t.Fatalf("public key after rotation: %+v, %v (want %s, verified)", info, err, pub)
	}
	exported, err := strong.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range exported {
		found = found || e.Key == key
	}
	if !found {
		t.Fatal("the license key changed in the rotation")
	}
	if _, err := strong.Activate(ctx, licensing.SeatRequest{Key: key, InstanceID: "i-1"}); err != nil {
		t.Fatalf("a key issued before the rotation: %v", err)
	}
	if w2.text() != "" {
		t.Fatalf("warnings after rotating to a strong secret: %q", w2.text())
	}
	evs, _ := strong.Events(ctx, licensing.EventFilter{})
	rotated := 0
	for _, ev := range evs {
		if ev.Kind == licensing.EventSecretRotated {
			rotated++
		}
	}
	if rotated != 1 {
		t.Fatalf("%d rotations in the event log, want 1", rotated)
	}
}

// Rotation is one transaction: a failure half-way leaves the old secret in
// force for everything.
func TestRotateSecretIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	key := e.generate(nil).Key
	// A sealed license key that no longer opens (damaged) stops the rotation.
	db := rawDB(t, e.path)
	if _, err := db.Exec("UPDATE license_keys SET sealed_key = zeroblob(60) WHERE digest = ?", licensekey.Digest(key)); err != nil {
		t.Fatal(err)
	}
	e.generate(nil)
	_, err := e.svc.RotateSecret(ctx, otherSecret)
	wantCode(t, err, licensing.CodeSecretMismatch)
	if _, err := e.service(otherSecret).PublicKey(ctx); licensing.ErrorCode(err) != licensing.CodeSecretMismatch {
		t.Fatalf("after a failed rotation the new secret works: %v", err)
	}
	if _, err := e.service(secret).PublicKey(ctx); err != nil {
		t.Fatalf("after a failed rotation the old secret fails: %v", err)
	}
}

// The attack: whoever can write the database adds their own public key and
// mints keys with its private half. Such a key is not trusted: not with the
// secret (the planted key has no sealed private key that opens), not with
// keys remembered from an earlier proof, not without either.
func TestPlantedPublicKeyIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	genuine := e.generate(nil)
	proven, err := e.svc.PublicKey(ctx)
	if err != nil || !proven.Verified {
		t.Fatalf("PublicKey: %+v, %v", proven, err)
	}

	// The attacker's key pair, planted with a license and its digest.
	apub, apriv, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := licensekey.Encode(licensekey.Claims{LicenseID: strings.Repeat("ab", 16), CustomerID: "CUST-001", Tier: "enterprise",
		IssuedAt: e.clock.now(), ExpiresAt: e.clock.now().Add(3650 * 24 * time.Hour), MaxInstances: 1000000, MaxServices: 1, MaxRequestsPerDay: 1}, apriv)
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, e.path)
	akid := licensekey.KeyID(apub)
	for _, q := range []string{
		"INSERT INTO signing_keys (key_id, public_key, sealed_private_key, created_at) VALUES ('" + akid + "', ?, x'00', '2030-01-01T00:00:00Z')",
		"INSERT INTO licenses (id, customer_id, tier, features, max_instances, max_services, max_requests_per_day, issued_at, expires_at, status, key_id, created_at, updated_at) VALUES ('" + strings.Repeat("ab", 16) + "', 'CUST-001', 'enterprise', '[]', 1000000, 1, 1, '2026-03-01T12:00:00Z', '2036-01-01T00:00:00Z', 'active', '" + akid + "', '2026-03-01T12:00:00Z', '2026-03-01T12:00:00Z')",
		"INSERT INTO license_keys (digest, license_id, sealed_key, issued_at, expires_at) VALUES ('" + licensekey.Digest(forged) + "', '" + strings.Repeat("ab", 16) + "', x'00', '2026-03-01T12:00:00Z', '2036-01-01T00:00:00Z')",
	} {
		args := []any{}
		if strings.Contains(q, "?") {
			args = append(args, []byte(apub))
		}
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}

	// With the secret: the database is recognised as tampered with.
	_, err = e.service(secret).Activate(ctx, licensing.SeatRequest{Key: forged, InstanceID: "i-1"})
	wantCode(t, err, licensing.CodeDBInvalid)
	if !strings.Contains(err.Error(), akid) {
		t.Fatalf("the refusal does not name the planted key: %v", err)
	}
	_, err = e.service(secret).PublicKey(ctx)
	wantCode(t, err, licensing.CodeDBInvalid)

	// With keys remembered from an earlier proof: the forged key's signer is
	// unknown, and named.
	remembered := licensekey.PublicKeys{}
	remembered.Add(proven.PublicKey)
	withMemory := licensing.New(licensing.Config{Store: e.store, Actor: "test", RememberedKeys: remembered})
	_, err = withMemory.Activate(ctx, licensing.SeatRequest{Key: forged, InstanceID: "i-1"})
	wantCode(t, err, licensing.CodeInvalidKey)
	if !strings.Contains(err.Error(), akid) {
		t.Fatalf("the refusal does not name the unknown signing key id %s: %v", akid, err)
	}
	if _, err := withMemory.Activate(ctx, licensing.SeatRequest{Key: genuine.Key, InstanceID: "i-1"}); err != nil {
		t.Fatalf("a genuine key: %v", err)
	}
	// Pinned: the same.
	_, err = licensing.New(licensing.Config{Store: e.store, Actor: "test", PublicKeys: remembered}).VerifyKey(ctx, forged)
	wantCode(t, err, licensing.CodeInvalidKey)
	// Neither: no verdict on the database's word alone.
	_, err = licensing.New(licensing.Config{Store: e.store, Actor: "test"}).VerifyKey(ctx, forged)
	wantCode(t, err, licensing.CodePublicKeyRequired)
	// Without the secret, public-key says what the database says, unverified.
	info, err := e.service("").PublicKey(ctx)
	if err != nil || info.Verified {
		t.Fatalf("PublicKey without the secret: %+v, %v: want unverified", info, err)
	}
}

// Swapping the public key of the genuine row (keeping its sealed private
// key) is caught: the public key is bound to the sealed record.
func TestSwappedPublicKeyIsDetected(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.generate(nil)
	apub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := rawDB(t, e.path).Exec("UPDATE signing_keys SET public_key = ?", []byte(apub)); err != nil {
		t.Fatal(err)
	}
	_, err := e.service(secret).PublicKey(ctx)
	wantCode(t, err, licensing.CodeDBInvalid)
	_, err = e.service(secret).Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 30, MaxInstances: 1, MaxServices: 1, MaxRequestsPerDay: 1})
	wantCode(t, err, licensing.CodeDBInvalid)
}

// Keys are accepted in their one canonical form: whitespace around a key is
// trimmed, never inside it.
func TestKeyWhitespace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	key := e.generate(nil).Key
	if _, err := e.svc.VerifyKey(ctx, "  "+key+"\r\n"); err != nil {
		t.Fatalf("surrounding whitespace: %v", err)
	}
	cut := len(key) - 20
	for name, k := range map[string]string{
		"LF inside":    key[:cut] + "\n" + key[cut:],
		"CRLF inside":  key[:cut] + "\r\n" + key[cut:],
		"space inside": key[:cut] + " " + key[cut:],
	} {
		_, err := e.svc.VerifyKey(ctx, k)
		if licensing.ErrorCode(err) != licensing.CodeInvalidKey {
			t.Errorf("%s: %v, want INVALID_KEY", name, err)
		}
		if _, err := e.svc.Activate(ctx, licensing.SeatRequest{Key: k, InstanceID: "i-1"}); licensing.ErrorCode(err) != licensing.CodeInvalidKey {
			t.Errorf("%s: activate %v, want INVALID_KEY", name, err)
		}
	}
}

func TestInstanceIDsArePrintable(t *testing.T) {
	e := newEnv(t)
	key := e.generate(func(r *licensing.GenerateRequest) { r.MaxInstances = 50 }).Key
	bad := map[string]string{
		"bidi override":       "host\u202Egpj.exe",
		"bidi isolate":        "host\u2066x",
		"zero-width space":    "host\u200Bname",
		"zero-width joiner":   "host\u200Dname",
		"byte order mark":     "\uFEFFhost",
		"line separator":      "host\u2028name",
		"paragraph separator": "host\u2029name",
		"invalid UTF-8":       "host\xffname",
		"NUL":                 "host\x00name",
		"over 128 bytes":      strings.Repeat("é", 65), // 65 characters, 130 bytes
	}
	for name, id := range bad {
		if err := e.activate(key, id); licensing.ErrorCode(err) != licensing.CodeBadRequest {
			t.Errorf("%s: %v, want BAD_REQUEST", name, err)
		}
	}
	for _, id := range []string{"instance-001", "ip:203.0.113.10", "Zürich 東京 node", strings.Repeat("é", 64)} {
		if err := e.activate(key, id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
}

func TestWithoutAPolicyShortSecretsAreStillRefused(t *testing.T) {
	store, _ := newBareEnv(t)
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: strings.Repeat("x", 31)})
	_, err := svc.PublicKey(context.Background())
	wantCode(t, err, licensing.CodeWeakSecret)
}
