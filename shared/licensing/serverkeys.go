package licensing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// Server key certificates and offline leases: the two things, besides
// license keys, that the license signing key signs.

// DefaultServerKeyDays is how long a server key certificate is valid. A
// server key lives on the internet-facing side; a stolen one signs answers
// and leases until its certificate ends, so the term is short and renewal
// (a new key, RotateServerKey) automatic.
const DefaultServerKeyDays = 30

// ServerKeyRenewal says when a certificate is due for renewal: once less
// than a third of its term is left.
func ServerKeyRenewal(c ServerCertificate) time.Time {
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3)
}

// certificateSkew backdates a certificate's start, for clients whose clock
// runs a little behind.
const certificateSkew = 5 * time.Minute

// Events of the server keys and offline leases.
const EventServerKeyCertified = "server_key.certified"

// CertifyServerKey makes a new server key pair and certifies it for days
// with the license signing key (needs the secret). The certificate goes in
// the database; the private key is returned for the operator to store
// (Secrets Manager, or a 0600 file) and is never stored here. A new key
// may be certified while older ones are still valid: rotation.
func (s *Service) CertifyServerKey(ctx context.Context, days int) (ed25519.PrivateKey, ServerCertificate, error) {
	if err := validateDays("days", days); err != nil {
		return nil, ServerCertificate{}, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, ServerCertificate{}, err
	}
	now := s.now()
	var out ServerCertificate
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		signer, _, err := s.signer(tx, now)
		if err != nil {
			return err
		}
		notBefore, notAfter := now.Add(-certificateSkew), now.Add(time.Duration(days)*24*time.Hour)
		cert, err := servercert.Issue(pub, notBefore, notAfter, signer)
		if err != nil {
			return err
		}
		out = ServerCertificate{KeyID: licensekey.KeyID(pub), PublicKey: pub, Certificate: cert,
			NotBefore: notBefore, NotAfter: notAfter, CreatedAt: now}
		if err := tx.InsertServerCertificate(out); err != nil {
			return err
		}
		return s.event(tx, now, EventServerKeyCertified, Event{Detail: "server key " + out.KeyID + " until " + notAfter.Format(time.RFC3339)})
	})
	if err != nil {
		return nil, ServerCertificate{}, err
	}
	return priv, out, nil
}

// EventServerKeyRetired: a replaced server key's certificates dropped.
const EventServerKeyRetired = "server_key.retired"

// RetireServerKey drops the certificates of a server key that a new one
// (CertifyServerKey) has replaced where the server reads its key, so that
// no server starts with the old key again. Clients hold no list of
// certificates: a copy of the old key still signs until its certificate
// ends, and nothing after (which is why certificates are short).
func (s *Service) RetireServerKey(ctx context.Context, replaced ed25519.PublicKey) error {
	old := licensekey.KeyID(replaced)
	return s.cfg.Store.Update(ctx, func(tx Tx) error {
		if err := tx.DeleteServerCertificates(old); err != nil {
			return err
		}
		return s.event(tx, s.now(), EventServerKeyRetired, Event{Detail: "server key " + old})
	})
}

// ServerCertificate finds the certificate of a server key that is valid
// now, checked against the keys this service trusts.
func (s *Service) ServerCertificate(ctx context.Context, pub ed25519.PublicKey) (ServerCertificate, error) {
	return s.ServerCertificateOf(ctx, func() (ed25519.PublicKey, error) { return pub, nil })
}

// ServerCertificateOf is ServerCertificate for a server key that may still
// be on its way (from Secrets Manager, at a function's cold start): the
// database is read first, and key is called once it is, so that a
// database in S3 loads while the key arrives. key's error is returned as
// it is; key is called once.
//
// A key that arrives after the read may be newer than it: a renewal
// certifies a new key before it stores it, so the key read has its
// certificate committed, but perhaps after the read. A key the read has
// no certificate of is therefore looked up once more, in a read made now
// that the key is here.
func (s *Service) ServerCertificateOf(ctx context.Context, key func() (ed25519.PublicKey, error)) (ServerCertificate, error) {
	now := s.now()
	var pub ed25519.PublicKey
	var out ServerCertificate
	var uncertified bool
	find := func(tx Tx) error {
		certs, err := tx.ServerCertificates()
		if err != nil {
			return err
		}
		keys, err := s.keys.verificationKeys(tx)
		if err != nil {
			return err
		}
		if pub == nil {
			if pub, err = key(); err != nil {
				return err
			}
		}
		kid := licensekey.KeyID(pub)
		var expired *ServerCertificate
		for i := len(certs) - 1; i >= 0; i-- {
			c := certs[i]
			if c.KeyID != kid {
				continue
			}
			if _, err := servercert.Verify(c.Certificate, keys, now); err == nil {
				out = c
				return nil
			}
			expired = &certs[i]
		}
		if expired != nil {
			return Errorf(CodeConfig, "the certificate of server key %s is not valid now (valid %s to %s) or not signed by a trusted license key: certify a new one with 'manage-licenses certify-server-key'",
				kid, expired.NotBefore.Format(time.RFC3339), expired.NotAfter.Format(time.RFC3339))
		}
		uncertified = true
		return Errorf(CodeConfig, "server key %s has no certificate in this database: make one with 'manage-licenses certify-server-key'", kid)
	}
	err := s.cfg.Store.View(ctx, find)
	if err != nil && uncertified {
		uncertified = false
		err = s.cfg.Store.View(ctx, find)
	}
	return out, err
}

// ServerCertificates lists the certificates, oldest first.
func (s *Service) ServerCertificates(ctx context.Context) ([]ServerCertificate, error) {
	var out []ServerCertificate
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.ServerCertificates()
		return err
	})
	return out, err
}

// OfflineLease is a lease for an air-gapped instance, signed by the license
// signing key so that the public key alone verifies it.
type OfflineLease struct {
	Token string      `json:"lease"`
	Lease lease.Lease `json:"claims"`
	Check Check       `json:"-"`
}

// IssueOfflineLease takes a seat for an instance with a lease of days,
// signed by the license signing key (needs the secret). It is recorded like
// any activation, as offline, and counts against max instances.
func (s *Service) IssueOfflineLease(ctx context.Context, r SeatRequest, days int) (OfflineLease, error) {
	if err := validateDays("days", days); err != nil {
		return OfflineLease{}, err
	}
	if err := r.validate(true); err != nil {
		return OfflineLease{}, err
	}
	var out OfflineLease
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		now := s.now()
		priv, _, err := s.signer(tx, now)
		if err != nil {
			return err
		}
		check, err := s.activateTx(tx, r, now, KindOffline, time.Duration(days)*24*time.Hour)
		out.Check = check
		if err != nil {
			return err
		}
		out.Lease, _ = check.Lease(lease.Offline, r.Key)
		out.Token, err = lease.Sign(out.Lease, priv)
		out.Lease.SignerKeyID = licensekey.KeyID(priv.Public().(ed25519.PublicKey))
		return err
	})
	return out, err
}

// ServerKeyStore is where the API's server key is kept for the server to
// read it: a 0600 file for serve, a Secrets Manager secret for the
// activate function. Load returns "" when nothing is stored yet.
type ServerKeyStore interface {
	Load(ctx context.Context) (string, error)
	Save(ctx context.Context, encoded string) error
	String() string // where, for messages
}

// Renewal says how RenewServerKey treats the key already stored.
type Renewal struct {
	Days int // the new certificate's term
	// Always makes a new key even when the stored one is not due
	// (rotate-server-key).
	Always bool
	// ReplaceForeign replaces what is not a server key this database
	// certified (never the signing secret itself).
	ReplaceForeign bool
	// Instead says, when something foreign is found and kept, what the
	// caller's operator can do instead (its own flag or setting).
	Instead string
}

func instead(r Renewal) string {
	if r.Instead == "" {
		return ""
	}
	return ": " + r.Instead
}

// RenewedServerKey says what RenewServerKey did.
type RenewedServerKey struct {
	Certificate ServerCertificate `json:"certificate"`
	Renewed     bool              `json:"renewed"`
	Retired     string            `json:"retired,omitempty"` // the key id replaced
}

// RenewServerKey keeps the server key in store current (needs the
// secret): a stored key certified here with more than a third of its term
// left is kept; otherwise a new key is certified for r.Days, saved in
// store, and the key it replaces retired (its certificates dropped). What
// may be another secret is never overwritten: the signing secret itself
// (a server key and a secret look alike, 32 bytes in base64; replacing
// it would lock the database for good), and without r.ReplaceForeign
// anything but a server key this database certified.
func (s *Service) RenewServerKey(ctx context.Context, store ServerKeyStore, r Renewal) (RenewedServerKey, error) {
	stored, err := store.Load(ctx)
	if err != nil {
		return RenewedServerKey{}, Wrap(CodeConfig, err, "%s: %v", store, err)
	}
	stored = strings.TrimSpace(stored)
	if s.keys.isSecret(stored) {
		return RenewedServerKey{}, Errorf(CodeConfig, "%s holds the signing secret itself: give the place of the server key (the stack's ServerKeySecretArn); nothing was changed", store)
	}
	var old ed25519.PublicKey
	if stored != "" {
		key, err := servercert.ParsePrivateKey(stored)
		if err == nil {
			old = key.Public().(ed25519.PublicKey)
		}
		certified, cerr := s.certified(ctx, old)
		switch {
		case cerr != nil:
			return RenewedServerKey{}, cerr
		case !certified && !r.ReplaceForeign && err != nil:
			return RenewedServerKey{}, Errorf(CodeConfig, "%s holds a value that is not a server key: is it the right place? Nothing was changed%s", store, instead(r))
		case !certified && !r.ReplaceForeign:
			return RenewedServerKey{}, Errorf(CodeConfig, "%s holds a server key this database never certified: is it the right place? Nothing was changed%s", store, instead(r))
		}
		if cert, err := s.ServerCertificate(ctx, old); certified && err == nil && !r.Always && s.now().Before(ServerKeyRenewal(cert)) {
			return RenewedServerKey{Certificate: cert}, nil
		}
	}
	priv, cert, err := s.CertifyServerKey(ctx, r.Days)
	if err != nil {
		return RenewedServerKey{}, err
	}
	if err := store.Save(ctx, servercert.EncodePrivateKey(priv)); err != nil {
		return RenewedServerKey{}, Wrap(CodeConfig, err, "certified server key %s, but cannot store it in %s: %v", cert.KeyID, store, err)
	}
	out := RenewedServerKey{Certificate: cert, Renewed: true}
	if old != nil && !old.Equal(cert.PublicKey) {
		if err := s.RetireServerKey(ctx, old); err != nil {
			return out, err
		}
		out.Retired = licensekey.KeyID(old)
	}
	return out, nil
}

// certified reports whether this database ever certified pub.
func (s *Service) certified(ctx context.Context, pub ed25519.PublicKey) (bool, error) {
	if pub == nil {
		return false, nil
	}
	certs, err := s.ServerCertificates(ctx)
	if err != nil {
		return false, err
	}
	for _, c := range certs {
		if pub.Equal(ed25519.PublicKey(c.PublicKey)) {
			return true, nil
		}
	}
	return false, nil
}
