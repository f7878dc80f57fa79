package servercert

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

func TestCertificate(t *testing.T) {
	lpub, lpriv, _ := ed25519.GenerateKey(rand.Reader)
	spub, _, _ := ed25519.GenerateKey(rand.Reader)
	trusted := licensekey.PublicKeys{}
	trusted.Add(lpub)
	nb := time.Now().Truncate(time.Second)
	cert, err := Issue(spub, nb, nb.Add(time.Hour), lpriv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(cert, trusted, nb.Add(time.Minute))
	if err != nil || !c.PublicKey.Equal(spub) || c.KeyID() != licensekey.KeyID(spub) {
		t.Fatalf("Verify: %+v %v", c, err)
	}
	for at, want := range map[time.Time]error{nb.Add(-time.Second): ErrNotValidNow, nb.Add(time.Hour): ErrNotValidNow} {
		if _, err := Verify(cert, trusted, at); !errors.Is(err, want) {
			t.Errorf("at %v: %v, want %v", at, err, want)
		}
	}
	opub, _, _ := ed25519.GenerateKey(rand.Reader)
	other := licensekey.PublicKeys{}
	other.Add(opub)
	if _, err := Verify(cert, other, nb); !errors.Is(err, ErrUnknownIssuer) {
		t.Errorf("another issuer: %v", err)
	}
	// Every single-character change is caught.
	for i := range cert {
		for _, ch := range []byte{'A', 'z', '_'} {
			if ch == cert[i] {
				continue
			}
			bad := cert[:i] + string(ch) + cert[i+1:]
			if _, err := Verify(bad, trusted, nb.Add(time.Minute)); err == nil {
				t.Fatalf("altered at %d still verifies", i)
			}
		}
	}
	if _, err := Parse(cert + "A"); !errors.Is(err, ErrMalformed) {
		t.Error("a longer certificate parses")
	}
}

func TestResponseSignatureCoversEveryField(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	r := Response{Status: 200, Route: "/api/v1/licensing/activate", Nonce: "n-1", Time: time.Unix(1780315200, 0),
		KeyDigest: KeyDigest("CAIO-v1-X-y"), Instance: "node-1", Body: []byte(`{"valid":true}`)}
	sig := SignResponse(priv, r)
	if err := VerifyResponse(pub, sig, r); err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(*Response){
		"status":      func(r *Response) { r.Status = 409 },
		"route":       func(r *Response) { r.Route = "/api/v1/licensing/validate" },
		"nonce":       func(r *Response) { r.Nonce = "n-2" },
		"time":        func(r *Response) { r.Time = r.Time.Add(time.Second) },
		"body":        func(r *Response) { r.Body = []byte(`{"valid":false}`) },
		"key":         func(r *Response) { r.KeyDigest = KeyDigest("CAIO-v1-X-z") },
		"no key":      func(r *Response) { r.KeyDigest = [32]byte{} },
		"instance":    func(r *Response) { r.Instance = "node-2" },
		"no instance": func(r *Response) { r.Instance = "" },
		"version 1":   func(r *Response) { r.V1 = true },
	}
	for name, change := range changes {
		c := r
		change(&c)
		if err := VerifyResponse(pub, sig, c); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	if !ValidNonce("abc-123_XYZ") || ValidNonce("") || ValidNonce("has space") || ValidNonce(string(make([]byte, 129))) {
		t.Error("ValidNonce")
	}
	if k, err := ParsePrivateKey(EncodePrivateKey(priv) + "\n"); err != nil || !k.Equal(priv) {
		t.Error("private key round trip")
	}
}

func TestLeaseTokens(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	at := time.Unix(1780315200, 0).UTC()
	l := lease.Lease{Kind: lease.Online, LicenseID: "0123456789abcdef0123456789abcdef", KeyDigest: licensekey.Digest("CAIO-v1-X-y"),
		InstanceID: "Zürich-1", IssuedAt: at, RenewAfter: at.Add(time.Hour), ExpiresAt: at.Add(2 * time.Hour)}
	tok, err := lease.Sign(l, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := lease.Verify(tok, pub)
	l.SignerKeyID = licensekey.KeyID(pub)
	if err != nil || got != l {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	opub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := lease.Verify(tok, opub); !errors.Is(err, lease.ErrBadSignature) {
		t.Error("verified with another key")
	}
	for i := range tok {
		ch := byte('A')
		if tok[i] == 'A' {
			ch = 'B'
		}
		if _, err := lease.Verify(tok[:i]+string(ch)+tok[i+1:], pub); err == nil {
			t.Fatalf("altered at %d still verifies", i)
		}
	}
	for _, bad := range []lease.Lease{{}, {Kind: 7, LicenseID: l.LicenseID, KeyDigest: l.KeyDigest, InstanceID: "x"}} {
		if _, err := lease.Sign(bad, priv); err == nil {
			t.Errorf("signed %+v", bad)
		}
	}
}

func BenchmarkLeaseVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	at := time.Now()
	tok, _ := lease.Sign(lease.Lease{LicenseID: "0123456789abcdef0123456789abcdef", KeyDigest: licensekey.Digest("k"),
		InstanceID: "node-1", IssuedAt: at, RenewAfter: at, ExpiresAt: at}, priv)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := lease.Verify(tok, pub); err != nil {
			b.Fatal(err)
		}
	}
}
