package servercert

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

var update = flag.Bool("update", false, "rewrite testdata/lease-vectors.json")

// vectors are what a client in another language checks itself against:
// fixed seeds (Ed25519 is deterministic), a certificate, a signed
// response with the exact bytes signed, and an online and an offline lease.
type vectors struct {
	LicenseSeedHex string `json:"license_signing_seed_hex"`
	LicensePublic  string `json:"license_public_key_base64"`
	ServerSeedHex  string `json:"server_seed_hex"`
	ServerPublic   string `json:"server_public_key_hex"`
	Certificate    struct {
		NotBefore time.Time `json:"not_before"`
		NotAfter  time.Time `json:"not_after"`
		Encoded   string    `json:"encoded"`
	} `json:"certificate"`
	Response struct {
		Status        int       `json:"status"`
		Route         string    `json:"route"`
		Nonce         string    `json:"nonce"`
		Time          time.Time `json:"time"`
		LicenseKey    string    `json:"license_key"`
		Instance      string    `json:"instance_id"`
		Body          string    `json:"body"`
		SignedHex     string    `json:"signed_message_hex"`
		Signature     string    `json:"signature"`
		ServerTimeHdr string    `json:"x_caio_server_time"`
	} `json:"response"`
	LicenseKey   string      `json:"license_key"`
	OnlineLease  leaseVector `json:"online_lease"`
	OfflineLease leaseVector `json:"offline_lease"`
	// GraceLease is a version 2 lease: an overage seat of a license in
	// its grace.
	GraceLease leaseVector `json:"grace_overage_lease"`
}

type leaseVector struct {
	Claims lease.Lease `json:"claims"`
	Token  string      `json:"token"`
}

func makeVectors(t *testing.T) vectors {
	var v vectors
	lseed, sseed := make([]byte, 32), make([]byte, 32)
	for i := range lseed {
		lseed[i], sseed[i] = byte(i+1), byte(0x80+i)
	}
	lpriv, spriv := ed25519.NewKeyFromSeed(lseed), ed25519.NewKeyFromSeed(sseed)
	v.LicenseSeedHex, v.ServerSeedHex = hex.EncodeToString(lseed), hex.EncodeToString(sseed)
	v.LicensePublic = licensekey.FormatPublicKey(lpriv.Public().(ed25519.PublicKey))
	v.ServerPublic = hex.EncodeToString(spriv.Public().(ed25519.PublicKey))
	nb, na := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	cert, err := Issue(spriv.Public().(ed25519.PublicKey), nb, na, lpriv)
	if err != nil {
		t.Fatal(err)
	}
	v.Certificate.NotBefore, v.Certificate.NotAfter, v.Certificate.Encoded = nb, na, cert
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	r := Response{Status: 200, Route: "/api/v1/licensing/activate", Nonce: "5f2b7c1e9a0d4c3b8e6f1a2d3c4b5a69", Time: at,
		KeyDigest: KeyDigest("CAIO-v1-CUST-001-example"), Instance: "node-1",
		Body: []byte(`{"valid":true,"code":"VALID","detail":"instance node-1 activated (1 of 5 seats in use)"}`)}
	v.Response.Status, v.Response.Route, v.Response.Nonce, v.Response.Time, v.Response.Body = r.Status, r.Route, r.Nonce, r.Time, string(r.Body)
	v.Response.LicenseKey, v.Response.Instance = "CAIO-v1-CUST-001-example", r.Instance
	v.Response.SignedHex, v.Response.Signature = hex.EncodeToString(r.message()), SignResponse(spriv, r)
	v.Response.ServerTimeHdr = "1780315200"
	v.LicenseKey = "CAIO-v1-CUST-001-example"
	online := lease.Lease{Kind: lease.Online, LicenseID: "0123456789abcdef0123456789abcdef", KeyDigest: licensekey.Digest(v.LicenseKey),
		InstanceID: "node-1", IssuedAt: at, RenewAfter: at.Add(36 * time.Hour), ExpiresAt: at.Add(72 * time.Hour)}
	offline := online
	offline.Kind, offline.InstanceID, offline.RenewAfter, offline.ExpiresAt = lease.Offline, "plant-7", at.Add(90*24*time.Hour), at.Add(90*24*time.Hour)
	grace := online
	grace.InstanceID, grace.LicenseEndsAt, grace.GraceEndsAt, grace.Overage = "node-9", at.Add(-24*time.Hour), at.Add(6*24*time.Hour), true
	for _, c := range []struct {
		l    lease.Lease
		key  ed25519.PrivateKey
		into *leaseVector
	}{{online, spriv, &v.OnlineLease}, {offline, lpriv, &v.OfflineLease}, {grace, spriv, &v.GraceLease}} {
		tok, err := lease.Sign(c.l, c.key)
		if err != nil {
			t.Fatal(err)
		}
		c.l.SignerKeyID = licensekey.KeyID(c.key.Public().(ed25519.PublicKey))
		*c.into = leaseVector{Claims: c.l, Token: tok}
	}
	return v
}

func TestVectors(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "lease-vectors.json")
	got := makeVectors(t)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want vectors
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Fatalf("the codecs no longer produce %s: a format changed (regenerate with -update only on purpose)\n got %s\nwant %s", path, a, b)
	}
	// And the vectors verify as a client would.
	keys, _ := licensekey.ParsePublicKeys(want.LicensePublic)
	h := http.Header{}
	h.Set(contract.HeaderCertificate, want.Certificate.Encoded)
	h.Set(contract.HeaderSignature, want.Response.Signature)
	h.Set(contract.HeaderServerTime, want.Response.ServerTimeHdr)
	h.Set(contract.HeaderSignatureVersion, "2")
	asked := Asked{Route: want.Response.Route, Nonce: want.Response.Nonce, Key: want.Response.LicenseKey, Instance: want.Response.Instance}
	cert, at, err := VerifyAnswer(h, want.Response.Status, asked, []byte(want.Response.Body), keys, want.Response.Time.Add(time.Hour))
	if err != nil || !at.Equal(want.Response.Time) {
		t.Fatal(at, err)
	}
	for name, other := range map[string]Asked{
		"another instance": {Route: asked.Route, Nonce: asked.Nonce, Key: asked.Key, Instance: "node-2"},
		"another key":      {Route: asked.Route, Nonce: asked.Nonce, Key: "CAIO-v1-CUST-002-example", Instance: asked.Instance},
	} {
		if _, _, err := VerifyAnswer(h, want.Response.Status, other, []byte(want.Response.Body), keys, want.Response.Time); err == nil {
			t.Errorf("the answer verifies for %s", name)
		}
	}
	// The certificate is judged by the client's clock, not the answer's.
	if _, _, err := VerifyAnswer(h, want.Response.Status, asked, []byte(want.Response.Body), keys, want.Certificate.NotAfter); !errors.Is(err, ErrNotValidNow) {
		t.Errorf("an answer checked after its certificate ended: %v", err)
	}
	h.Del(contract.HeaderSignatureVersion)
	if _, _, err := VerifyAnswer(h, want.Response.Status, asked, []byte(want.Response.Body), keys, want.Response.Time); !errors.Is(err, ErrUnsigned) {
		t.Errorf("an answer that does not say its version: %v", err)
	}
	if _, err := lease.Verify(want.OnlineLease.Token, cert.PublicKey); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Verify(want.OfflineLease.Token, keys[want.OfflineLease.Claims.SignerKeyID]); err != nil {
		t.Fatal(err)
	}
	if l, err := lease.Verify(want.GraceLease.Token, cert.PublicKey); err != nil || l.Version() != 2 || !l.Overage || !l.InGrace(want.Response.Time) {
		t.Fatal(l, err)
	}
}

// A second implementation, in Python, agrees with the vectors.
func TestVectorsInPython(t *testing.T) {
	if exec.Command("python3", "-c", "import cryptography").Run() != nil {
		if os.Getenv("CAIO_REQUIRE_TEST_TOOLS") != "" {
			t.Fatal("python3 with the cryptography package is not installed: run 'make deps'")
		}
		t.Skip("python3 with the cryptography package is not installed")
	}
	out, err := exec.Command("python3", filepath.Join("..", "..", "testdata", "verify_lease_vectors.py"),
		filepath.Join("..", "..", "testdata", "lease-vectors.json")).CombinedOutput()
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("python: %v\n%s", err, out)
	}
}
