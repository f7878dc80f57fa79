package licensing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// Server key certificates and offline leases: the two things, besides
// license keys, that the license signing key signs.

// DefaultServerKeyDays is how long a server key certificate is valid.
const DefaultServerKeyDays = 365

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

// ServerCertificate finds the certificate of a server key that is valid
// now, checked against the keys this service trusts.
func (s *Service) ServerCertificate(ctx context.Context, pub ed25519.PublicKey) (ServerCertificate, error) {
	kid := licensekey.KeyID(pub)
	now := s.now()
	var out ServerCertificate
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		certs, err := tx.ServerCertificates()
		if err != nil {
			return err
		}
		keys, err := s.verificationKeys(tx)
		if err != nil {
			return err
		}
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
		return Errorf(CodeConfig, "server key %s has no certificate in this database: make one with 'manage-licenses certify-server-key'", kid)
	})
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
		a := check.Activation
		out.Lease = lease.Lease{Kind: lease.Offline, LicenseID: a.LicenseID, KeyDigest: lease.KeyDigest(r.Key), InstanceID: r.InstanceID,
			IssuedAt: *a.LeaseIssuedAt, RenewAfter: *a.LeaseExpiresAt, ExpiresAt: *a.LeaseExpiresAt}
		out.Token, err = lease.Sign(out.Lease, priv)
		out.Lease.SignerKeyID = licensekey.KeyID(priv.Public().(ed25519.PublicKey))
		return err
	})
	return out, err
}
