package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

func (a *app) certifyServerKeyCommand() *cobra.Command {
	var days int
	var output string
	c := &cobra.Command{
		Use:   "certify-server-key [--days N] [--output FILE]",
		Short: "Make a server key for the API and certify it with the license signing key",
		Long: `Make a new server key pair, certify it with the license signing key for N days
(needs the secret), and store the certificate in the database. The private key
goes to FILE (mode 0600) or, without --output, to standard output alone, to be
stored in Secrets Manager for the activate function. A new key may be certified
while an older one is still valid: deploy it, then let the old one lapse.`,
		Example: `  manage-licenses certify-server-key --output ~/.caio/server_key
  manage-licenses certify-server-key | aws secretsmanager put-secret-value --secret-id "$SERVER_KEY_ARN" --secret-string file:///dev/stdin`,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := a.service(c, config.Write, true)
			if err != nil {
				return err
			}
			defer done()
			priv, cert, err := svc.CertifyServerKey(c.Context(), days)
			if err != nil {
				return err
			}
			encoded := servercert.EncodePrivateKey(priv)
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
	return c
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
		Example: `  manage-licenses issue-offline-lease CAIO-v1-CUST-001-... --instance-id plant-7 --days 90 --output plant-7.lease`,
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
