package licensing_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// The keyring alone, on a real database file: which keys it trusts, when
// it derives, and that rotation and concurrent proving do not race.

var keyringNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keyringDB is a database whose signing key the secret made; it returns
// the store and that key's public half.
func keyringDB(t *testing.T) (*sqlitestore.Store, ed25519.PublicKey) {
	t.Helper()
	secretboxtest.CheapKDF()
	store, _ := newBareEnv(t)
	k := licensing.NewKeyring(licensing.Config{Secret: secret}, nil)
	var pub ed25519.PublicKey
	err := store.Update(context.Background(), func(tx licensing.Tx) error {
		priv, created, err := k.SigningKey(tx, keyringNow)
		if created == "" && err == nil {
			t.Error("a new database's first signing key was not reported as created")
		}
		pub, _ = priv.Public().(ed25519.PublicKey)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return store, pub
}

func trusted(t *testing.T, store *sqlitestore.Store, k *licensing.Keyring) (licensekey.PublicKeys, error) {
	t.Helper()
	var keys licensekey.PublicKeys
	err := store.View(context.Background(), func(tx licensing.Tx) error {
		var err error
		keys, err = k.VerificationKeys(tx)
		return err
	})
	return keys, err
}

func TestKeyringTrustPolicy(t *testing.T) {
	store, pub := keyringDB(t)
	kid := licensekey.KeyID(pub)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	pinned := licensekey.PublicKeys{}
	pinned.Add(other)
	remembered := licensekey.PublicKeys{}
	remembered.Add(pub)
	for _, c := range []struct {
		name     string
		cfg      licensing.Config
		wantKey  ed25519.PublicKey // the one key trusted
		wantCode licensing.Code
	}{
		{"pinned keys are the only ones, whatever the database holds", licensing.Config{PublicKeys: pinned, Secret: secret}, other, ""},
		{"the secret proves the database's keys", licensing.Config{Secret: secret}, pub, ""},
		{"a wrong secret proves nothing", licensing.Config{Secret: "ZZZrFT24bkwTgqtOujfJ6ZkpcJWjE/QQGw+YIEPSADg="}, nil, licensing.CodeSecretMismatch},
		// Remembered keys covering the database need no derivation: even a
		// wrong secret is not consulted.
		{"keys remembered on this machine are trusted without deriving", licensing.Config{RememberedKeys: remembered, Secret: "ZZZrFT24bkwTgqtOujfJ6ZkpcJWjE/QQGw+YIEPSADg="}, pub, ""},
		{"no secret and nothing remembered trusts nothing", licensing.Config{}, nil, licensing.CodePublicKeyRequired},
		{"unproven keys only where the caller opted in", licensing.Config{TrustUnprovenKeys: true}, pub, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys, err := trusted(t, store, licensing.NewKeyring(c.cfg, nil))
			if licensing.ErrorCode(err) != c.wantCode {
				t.Fatalf("error %v, want code %q", err, c.wantCode)
			}
			if c.wantKey == nil {
				return
			}
			if len(keys) != 1 || !keys[licensekey.KeyID(c.wantKey)].Equal(c.wantKey) {
				t.Fatalf("trusted %v, want only %s (the database's is %s)", keys, licensekey.KeyID(c.wantKey), kid)
			}
		})
	}
}

// A key planted in the database by someone without the secret is trusted
// by nobody: not with the secret (refused), not on a machine that remembers
// the genuine key (the remembered set, not the database's, is used).
func TestKeyringRefusesAPlantedKey(t *testing.T) {
	store, pub := keyringDB(t)
	planted, _, _ := ed25519.GenerateKey(rand.Reader)
	err := store.Update(context.Background(), func(tx licensing.Tx) error {
		return tx.InsertSigningKey(licensing.SigningKey{KeyID: licensekey.KeyID(planted), PublicKey: planted,
			CreatedAt: keyringNow.Add(time.Hour), SealedPrivateKey: []byte("not sealed by the secret")})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trusted(t, store, licensing.NewKeyring(licensing.Config{Secret: secret}, nil)); licensing.ErrorCode(err) != licensing.CodeDBInvalid {
		t.Fatalf("with the secret: %v, want DB_INVALID naming the planted key", err)
	}
	remembered := licensekey.PublicKeys{}
	remembered.Add(pub)
	keys, err := trusted(t, store, licensing.NewKeyring(licensing.Config{RememberedKeys: remembered}, nil))
	if err != nil || len(keys) != 1 || keys[licensekey.KeyID(planted)] != nil {
		t.Fatalf("remembered: %v, %v; want the genuine key only", keys, err)
	}
}

// The sealing key is derived once per salt and parameters; across a
// rotation, what the new salt sealed opens from the moment the rotation
// commits, before the keyring switches secrets (a request in between).
func TestKeyringDerivesOncePerSaltAcrossARotation(t *testing.T) {
	store, _ := keyringDB(t)
	k := licensing.NewKeyring(licensing.Config{Secret: secret}, nil)
	const newSecret = "n3wSecretVq8Jb2kW4rLZx9pHcTfG7sYdA1mE6uRiKoQ="
	err := store.Update(context.Background(), func(tx licensing.Tx) error {
		a, err := k.SealingKey(tx)
		if err != nil {
			return err
		}
		if b, _ := k.SealingKey(tx); a != b {
			t.Error("the sealing key was derived twice for the same salt")
		}
		if _, err := k.Reseal(tx, newSecret); err != nil {
			return err
		}
		// Not yet committed: the keyring still holds the old secret.
		if b, _ := k.SealingKey(tx); b == a {
			t.Error("a new salt reused the old derivation")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trusted(t, store, k); err != nil {
		t.Fatalf("committed, before the keyring switched secrets: %v", err)
	}
	k.Use(newSecret)
	if _, err := trusted(t, store, k); err != nil {
		t.Fatalf("after rotation, the new secret: %v", err)
	}
	if _, err := trusted(t, store, licensing.NewKeyring(licensing.Config{Secret: secret}, nil)); licensing.ErrorCode(err) != licensing.CodeSecretMismatch {
		t.Fatalf("after rotation, the old secret: %v, want SECRET_MISMATCH", err)
	}
}

// Activations prove and verify while a rotation changes the secret: the race
// detector (make race) watches the keyring's state.
func TestKeyringConcurrentUse(t *testing.T) {
	store, _ := keyringDB(t)
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret, Now: func() time.Time { return keyringNow }})
	ctx := context.Background()
	if _, err := svc.AddCustomer(ctx, "CUST-001", "Acme Corp", "ops@acme.test"); err != nil {
		t.Fatal(err)
	}
	is, err := svc.Generate(ctx, licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: 365, MaxInstances: 50, MaxServices: 1, MaxRequestsPerDay: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				if _, err := svc.Activate(ctx, licensing.SeatRequest{Key: is.Key, InstanceID: "node-" + string(rune('a'+i))}); err != nil {
					errs <- err
				}
			}
		}()
	}
	if _, err := svc.RotateSecret(ctx, "n3wSecretVq8Jb2kW4rLZx9pHcTfG7sYdA1mE6uRiKoQ="); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("activate during a rotation: %v", err)
	}
	if _, err := svc.PublicKey(ctx); err != nil {
		t.Fatalf("after the rotation, the service still proves its keys: %v", err)
	}
}
