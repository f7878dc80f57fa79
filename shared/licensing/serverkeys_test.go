package licensing_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// keyPlace is where a server key is kept, in memory (a file or a secret
// in production).
type keyPlace struct{ value string }

func (p *keyPlace) Load(context.Context) (string, error)   { return p.value, nil }
func (p *keyPlace) Save(_ context.Context, v string) error { p.value = v; return nil }
func (p *keyPlace) String() string                         { return "the test place" }
func (p *keyPlace) key(t *testing.T) ed25519.PublicKey {
	k, err := servercert.ParsePrivateKey(p.value)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

// Renewal: kept while more than a third of the term is left, then a new
// key whose predecessor is retired (no certificate left, so no server
// starts with it); what may be another secret is never overwritten.
func TestRenewServerKey(t *testing.T) {
	e := newEnv(t)
	e.generate(nil) // the signing key
	ctx := context.Background()
	place := &keyPlace{}
	renew := func(r licensing.Renewal) licensing.RenewedServerKey {
		t.Helper()
		if r.Days == 0 {
			r.Days = licensing.DefaultServerKeyDays
		}
		out, err := e.svc.RenewServerKey(ctx, place, r)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := renew(licensing.Renewal{})
	if !first.Renewed || first.Retired != "" || place.value == "" {
		t.Fatalf("first renewal: %+v", first)
	}
	if got := first.Certificate.NotAfter.Sub(first.Certificate.NotBefore); got < 30*24*time.Hour || got > 30*24*time.Hour+10*time.Minute {
		t.Fatalf("a certificate of %v, want 30 days", got)
	}
	old := place.key(t)
	e.clock.advance(19 * 24 * time.Hour) // 11 days left: more than a third
	if r := renew(licensing.Renewal{}); r.Renewed || !place.key(t).Equal(old) {
		t.Fatalf("renewed a key with more than a third of its term left: %+v", r)
	}
	e.clock.advance(2 * 24 * time.Hour) // 9 days left
	second := renew(licensing.Renewal{})
	if !second.Renewed || second.Retired != licensekey.KeyID(old) || place.key(t).Equal(old) {
		t.Fatalf("due renewal: %+v", second)
	}
	if _, err := e.svc.ServerCertificate(ctx, old); licensing.ErrorCode(err) != licensing.CodeConfig {
		t.Fatalf("the retired key still has a certificate: %v", err)
	}
	if r := renew(licensing.Renewal{Always: true}); !r.Renewed || r.Retired != second.Certificate.KeyID {
		t.Fatalf("rotation: %+v", r)
	}

	for name, value := range map[string]string{
		"the signing secret": secret,
		"not a server key":   "hello",
		"a foreign key":      servercert.EncodePrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32))),
	} {
		place.value = value
		_, err := e.svc.RenewServerKey(ctx, place, licensing.Renewal{Days: 30})
		if licensing.ErrorCode(err) != licensing.CodeConfig || place.value != value {
			t.Errorf("%s: %v, and the place holds %q", name, err, place.value)
		}
		if name == "the signing secret" && strings.Contains(err.Error(), secret) {
			t.Error("the error shows the secret")
		}
	}
	place.value = "hello"
	if r, err := e.svc.RenewServerKey(ctx, place, licensing.Renewal{Days: 30, ReplaceForeign: true}); err != nil || !r.Renewed {
		t.Fatalf("--force: %+v %v", r, err)
	}
	place.value = secret
	if _, err := e.svc.RenewServerKey(ctx, place, licensing.Renewal{Days: 30, ReplaceForeign: true, Always: true}); err == nil || place.value != secret {
		t.Fatal("--force overwrote the signing secret")
	}
}

// A function's cold start reads the database while its server key arrives
// from Secrets Manager (ServerCertificateOf). The daily renewal certifies a
// new key in the database before it stores it there, so whatever key the
// start reads has its certificate committed; but the read of the database
// may have been made before that commit, and the key read after the new
// one was stored. The certificate is then found all the same, rather than
// the start failing with "no certificate in this database".
func TestServerCertificateOfAKeyRenewedAsItArrives(t *testing.T) {
	e := newEnv(t)
	e.generate(nil) // the signing key
	ctx := context.Background()
	place := &keyPlace{}
	if _, err := e.svc.RenewServerKey(ctx, place, licensing.Renewal{Days: licensing.DefaultServerKeyDays}); err != nil {
		t.Fatal(err)
	}
	// The key on its way, read once (as the function reads it): the
	// renewal runs between the database's read and the key's arrival.
	key := sync.OnceValues(func() (ed25519.PublicKey, error) {
		if _, err := e.svc.RenewServerKey(ctx, place, licensing.Renewal{Days: licensing.DefaultServerKeyDays, Always: true}); err != nil {
			return nil, err
		}
		return place.key(t), nil
	})
	cert, err := e.svc.ServerCertificateOf(ctx, key)
	if err != nil {
		t.Fatalf("the renewed key, arriving after the read: %v", err)
	}
	if got, _ := key(); !ed25519.PublicKey(cert.PublicKey).Equal(got) {
		t.Fatalf("the certificate of %s, not of the key read", cert.KeyID)
	}
}
