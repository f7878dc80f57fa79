package main

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

func (a *app) certifyServerKeyCommand() *cobra.Command {
	var days int
	var output, toSecret string
	var force bool
	c := &cobra.Command{
		Use:   "certify-server-key [--days N] [--output FILE | --to-secret ARN [--force]]",
		Short: "Make a server key for the API and certify it with the license signing key",
		Long: `Make a new server key pair, certify it with the license signing key for N days
(needs the secret), and store the certificate in the database. The private key
goes to FILE (mode 0600) or, without --output, to standard output alone, to be
stored in Secrets Manager for the activate function. A new key may be certified
while an older one is still valid: deploy it, then let the old one lapse.

With --to-secret ARN the private key goes straight into that Secrets Manager
secret (the stack's ServerKeySecretArn) and is printed nowhere. A key already
there whose certificate runs at least a third of --days more is kept, so a
deploy can run this every time; --force certifies a new one anyway. A secret
holding the signing secret is never overwritten, nor, without --force, one
holding anything but a server key this database certified.`,
		Example: `  manage-licenses certify-server-key --output ~/.caio/server_key
  manage-licenses certify-server-key --to-secret "$SERVER_KEY_ARN"`,
		RunE: func(c *cobra.Command, _ []string) error {
			if output != "" && toSecret != "" {
				return usageErrorf("give one place for the private key: --output FILE or --to-secret ARN")
			}
			svc, done, err := a.service(c, config.Write, true)
			if err != nil {
				return err
			}
			defer done()
			if toSecret != "" {
				signingSecret, _ := a.secret(c.Context()) // read once already, for the service
				kept, err := keptServerKey(c.Context(), svc, toSecret, signingSecret, time.Duration(days)*24*time.Hour/3, force)
				if err != nil {
					return err
				}
				if kept != nil && !force {
					if a.jsonOut {
						return a.printJSON(map[string]any{"key_id": kept.KeyID, "not_after": kept.NotAfter, "secret": toSecret, "kept": true})
					}
					fmt.Fprintf(a.stdout, "Server key %s in %s is certified until %s; kept\n", kept.KeyID, toSecret, rfc3339(kept.NotAfter))
					return nil
				}
			}
			priv, cert, err := svc.CertifyServerKey(c.Context(), days)
			if err != nil {
				return err
			}
			encoded := servercert.EncodePrivateKey(priv)
			if toSecret != "" {
				if err := awssecret.Put(c.Context(), toSecret, encoded); err != nil {
					return licensing.Wrap(licensing.CodeConfig, err, "certified server key %s, but cannot store it: %v", cert.KeyID, err)
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"key_id": cert.KeyID, "not_after": cert.NotAfter, "secret": toSecret, "kept": false})
				}
				fmt.Fprintf(a.stdout, "Certified server key %s until %s; stored in %s\n", cert.KeyID, rfc3339(cert.NotAfter), toSecret)
				return nil
			}
			if output != "" {
				if err := writePrivateFile(output, encoded+"\n"); err != nil {
					return err
				}
			}
			if a.jsonOut {
				out := map[string]any{"key_id": cert.KeyID, "not_before": cert.NotBefore, "not_after": cert.NotAfter, "certificate": cert.Certificate}
				if output != "" {
					out["output"] = output
				} else {
					out["private_key"] = encoded
				}
				return a.printJSON(out)
			}
			if output == "" {
				fmt.Fprintln(a.stdout, encoded)
				a.warn("certified server key %s until %s; its private key is on standard output: store it (Secrets Manager, CAIO_SERVER_KEY) and nowhere else", cert.KeyID, rfc3339(cert.NotAfter))
				return nil
			}
			fmt.Fprintf(a.stdout, "Certified server key %s until %s; private key written to %s (mode 0600)\n", cert.KeyID, rfc3339(cert.NotAfter), output)
			return nil
		},
	}
	c.Flags().IntVar(&days, "days", licensing.DefaultServerKeyDays, "days the certificate is valid")
	c.Flags().StringVarP(&output, "output", "o", "", "write the private key to FILE (mode 0600) instead of standard output")
	c.Flags().StringVar(&toSecret, "to-secret", "", "store the private key in this Secrets Manager secret instead of printing it")
	c.Flags().BoolVar(&force, "force", false, "with --to-secret: certify a new key even when the stored one is still good")
	return c
}

// keptServerKey returns the certificate of the server key stored in the
// secret arn when it is certified in this database for at least left more;
// nil when the secret is empty or its key needs renewing. What may be
// another secret is never overwritten: the signing secret itself (a
// server key and a secret look alike, 32 bytes in base64; replacing it
// would lock the database for good), and without force anything that is
// not a server key this database certified.
func keptServerKey(ctx context.Context, svc *licensing.Service, arn, signingSecret string, left time.Duration, force bool) (*licensing.ServerCertificate, error) {
	stored, err := awssecret.Fetch(ctx, arn)
	if errors.Is(err, awssecret.ErrNoValue) {
		return nil, nil
	}
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "--to-secret: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(signingSecret)) == 1 {
		return nil, licensing.Errorf(licensing.CodeConfig, "--to-secret %s holds the signing secret itself: give the stack's ServerKeySecretArn; nothing was changed", arn)
	}
	key, err := servercert.ParsePrivateKey(stored)
	if err != nil {
		if force {
			return nil, nil
		}
		return nil, licensing.Errorf(licensing.CodeConfig, "--to-secret %s holds a value that is not a server key: is it the stack's ServerKeySecretArn? Nothing was changed (--force replaces it)", arn)
	}
	pub := key.Public().(ed25519.PublicKey)
	certs, err := svc.ServerCertificates(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(certs, func(c licensing.ServerCertificate) bool { return pub.Equal(ed25519.PublicKey(c.PublicKey)) }) && !force {
		return nil, licensing.Errorf(licensing.CodeConfig, "--to-secret %s holds a server key this database never certified: is it the right secret? Nothing was changed (--force replaces it)", arn)
	}
	cert, err := svc.ServerCertificate(ctx, pub)
	if err != nil || time.Until(cert.NotAfter) < left {
		return nil, nil
	}
	return &cert, nil
}

// offlineLeaseFile is what an air-gapped instance receives.
type offlineLeaseFile struct {
	Format     string `json:"format"`
	Lease      string `json:"lease"`
	LicenseID  string `json:"license_id"`
	InstanceID string `json:"instance_id"`
	ExpiresAt  string `json:"expires_at"`
}

// OfflineLeaseFormat names the offline lease file format.
const OfflineLeaseFormat = "caio-offline-lease-v1"

func (a *app) issueOfflineLeaseCommand() *cobra.Command {
	var instance, output string
	var days int
	c := &cobra.Command{
		Use:   "issue-offline-lease KEY --instance-id ID --days N --output FILE",
		Short: "Take a seat for an air-gapped instance and write a lease file it verifies offline",
		Long: `Take a seat for an instance that cannot reach the API, with an N-day lease
signed by the license signing key itself (needs the secret): the instance
verifies the file with the public key alone. It is recorded like any
activation (as offline) and counts against max instances until it expires or
the instance is deactivated.`,
		Example: `  manage-licenses issue-offline-lease "$KEY" --instance-id plant-7 --days 90 --output plant-7.lease`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, config.Write, true)
			if err != nil {
				return err
			}
			defer done()
			ol, err := svc.IssueOfflineLease(c.Context(), licensing.SeatRequest{Key: args[0], InstanceID: instance}, days)
			if err != nil {
				return err
			}
			file := offlineLeaseFile{Format: OfflineLeaseFormat, Lease: ol.Token, LicenseID: ol.Lease.LicenseID,
				InstanceID: ol.Lease.InstanceID, ExpiresAt: rfc3339(ol.Lease.ExpiresAt)}
			b, _ := json.MarshalIndent(file, "", "  ")
			if err := writePrivateFile(output, string(b)+"\n"); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"output": output, "lease": ol.Lease})
			}
			fmt.Fprintf(a.stdout, "Offline lease for %s on license %s until %s written to %s\n", instance, ol.Lease.LicenseID, rfc3339(ol.Lease.ExpiresAt), output)
			return nil
		},
	}
	c.Flags().StringVar(&instance, "instance-id", "", "the air-gapped instance (required)")
	c.Flags().IntVar(&days, "days", 0, "days the lease lasts (required; at most until the license expires)")
	c.Flags().StringVarP(&output, "output", "o", "", "the lease file to write (required)")
	requireFlags(c, "instance-id", "days", "output")
	return c
}
