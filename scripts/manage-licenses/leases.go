package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
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
there with more than a third of its certificate's term left is kept, so a
deploy can run this every time; otherwise a new key replaces it and the old
key is retired (see rotate-server-key); --force makes a new one anyway. A
secret holding the signing secret is never overwritten, nor, without --force,
one holding anything but a server key this database certified.

Certificates last 30 days by default: a copied server key signs answers and
leases only until its certificate ends.`,
		Example: `  manage-licenses certify-server-key --output ~/.caio/server_key
  manage-licenses certify-server-key --to-secret "$SERVER_KEY_ARN"`,
		RunE: func(c *cobra.Command, _ []string) error {
			if output != "" && toSecret != "" {
				return usageErrorf("give one place for the private key: --output FILE or --to-secret ARN")
			}
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			if toSecret != "" {
				r, err := svc.RenewServerKey(c.Context(), wiring.ServerKeySecret(toSecret), licensing.Renewal{Days: days, Always: force, ReplaceForeign: force, Instead: "--force replaces it"})
				if err != nil {
					return err
				}
				return a.printRenewal(r, toSecret)
			}
			priv, cert, err := svc.CertifyServerKey(c.Context(), days)
			if err != nil {
				return err
			}
			encoded := servercert.EncodePrivateKey(priv)
			if output != "" {
				if err := wiring.WritePrivateFile(output, encoded+"\n"); err != nil {
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
	outputFlag(c, &output, false, "write the private key to FILE (mode 0600) instead of standard output")
	nonEmptyFlag(c.Flags(), &toSecret, "to-secret", "store the private key in this Secrets Manager secret instead of printing it")
	c.Flags().BoolVar(&force, "force", false, "with --to-secret: certify a new key even when the stored one is still good")
	return c
}

func (a *app) rotateServerKeyCommand() *cobra.Command {
	var days int
	var output, toSecret string
	var force bool
	c := &cobra.Command{
		Use:   "rotate-server-key [--days N] [--output FILE | --to-secret ARN] [--force]",
		Short: "Replace the API's server key: a new key, certified, stored where the server reads it",
		Long: `Make a new server key, certify it for N days (needs the secret), store it where
the server reads it (the file --output FILE, default ~/.caio/server_key, or the
Secrets Manager secret --to-secret ARN), and drop the certificate of the key it
replaces, so that no server starts with the old key again. Restart serve; the
activate function reads the new key at its next cold start.

Rotate at once if the server key may have been copied: a copy signs answers
and leases only until its certificate ends (30 days at most, by default), and
clients refuse any lease that outlives it. certify-server-key --to-secret, the
deploy script, the daily schedule in AWS and serve at start rotate by
themselves once less than a third of a certificate's term is left.`,
		Example: `  manage-licenses rotate-server-key
  manage-licenses rotate-server-key --to-secret "$SERVER_KEY_ARN"`,
		RunE: func(c *cobra.Command, _ []string) error {
			if output != "" && toSecret != "" {
				return usageErrorf("give one place for the server key: --output FILE or --to-secret ARN")
			}
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			where := orDefault(output, a.env.DefaultServerKeyFile())
			var store licensing.ServerKeyStore = wiring.ServerKeyFile(where)
			if toSecret != "" {
				store, where = wiring.ServerKeySecret(toSecret), toSecret
			}
			r, err := svc.RenewServerKey(c.Context(), store, licensing.Renewal{Days: days, Always: true, ReplaceForeign: force, Instead: "--force replaces it"})
			if err != nil {
				return err
			}
			return a.printRenewal(r, where)
		},
	}
	c.Flags().IntVar(&days, "days", licensing.DefaultServerKeyDays, "days the new certificate is valid")
	outputFlag(c, &output, false, "the server key file (mode 0600; default ~/.caio/server_key)")
	nonEmptyFlag(c.Flags(), &toSecret, "to-secret", "the Secrets Manager secret that holds the server key (the stack's ServerKeySecretArn)")
	c.Flags().BoolVar(&force, "force", false, "replace what is stored even if it is not a server key this database certified")
	return c
}

// printRenewal says what RenewServerKey did; the private key is printed
// nowhere.
func (a *app) printRenewal(r licensing.RenewedServerKey, where string) error {
	cert := r.Certificate
	if a.jsonOut {
		out := map[string]any{"key_id": cert.KeyID, "not_after": cert.NotAfter, "stored_in": where, "kept": !r.Renewed}
		if r.Retired != "" {
			out["retired"] = r.Retired
		}
		return a.printJSON(out)
	}
	switch {
	case !r.Renewed:
		fmt.Fprintf(a.stdout, "Server key %s in %s is certified until %s; kept\n", cert.KeyID, where, rfc3339(cert.NotAfter))
	case r.Retired != "":
		fmt.Fprintf(a.stdout, "Certified server key %s until %s; stored in %s; server key %s retired (its certificate dropped)\n", cert.KeyID, rfc3339(cert.NotAfter), where, r.Retired)
	default:
		fmt.Fprintf(a.stdout, "Certified server key %s until %s; stored in %s\n", cert.KeyID, rfc3339(cert.NotAfter), where)
	}
	return nil
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
			svc, done, err := a.service(c, wiring.Write, secretRequired)
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
			if err := wiring.WritePrivateFile(output, string(b)+"\n"); err != nil {
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
	outputFlag(c, &output, false, "the lease file to write (required)")
	requireFlags(c, "instance-id", "days", "output")
	return c
}
