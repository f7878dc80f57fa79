package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
	"github.com/caio-licensing/caio-licensing/shared/mail/nomail"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
	"github.com/caio-licensing/caio-licensing/shared/wiring/mailwiring"
)

// licenseFlags are the terms shared by generate-license and distribute-license.
type licenseFlags struct {
	expiresDays  int
	features     []string
	maxInstances int64
	maxServices  int64
	maxRequests  int64
	leaseHours   int64
	leaseMinutes int64
	maxActPerDay int64
	seatTimeout  int64 // minutes
	graceDays    int64
	overage      int64 // percent
}

func (f *licenseFlags) register(c *cobra.Command) {
	c.Flags().IntVar(&f.expiresDays, "expires-days", licensing.DefaultExpiresDays, "days until the license expires")
	c.Flags().StringSliceVar(&f.features, "features", nil, "features to enable (several values, or comma-separated)")
	c.Flags().Int64Var(&f.maxInstances, "max-instances", licensing.DefaultMaxInstances, "instances that may be active at once")
	c.Flags().Int64Var(&f.maxServices, "max-services", licensing.DefaultMaxServices, "services allowed per instance")
	c.Flags().Int64Var(&f.maxRequests, "max-requests-per-day", licensing.DefaultMaxRequestsPerDay, "requests allowed per day")
	c.Flags().Int64Var(&f.leaseHours, "lease-hours", licensing.DefaultLeaseSeconds/3600, "hours a seat stays held without renewal (a dead instance's seat frees itself after this)")
	c.Flags().Int64Var(&f.leaseMinutes, "lease-minutes", 0, "the lease in minutes instead (at least 1; for tests and short trials)")
	c.MarkFlagsMutuallyExclusive("lease-hours", "lease-minutes")
	c.Flags().Int64Var(&f.maxActPerDay, "max-activations-per-day", 0, "new instance seats allowed per rolling 24 hours (default max(10, 2 x max instances))")
	seatTimeoutFlag(c, &f.seatTimeout)
	graceAndOverageFlags(c, &f.graceDays, &f.overage)
}

// seatTimeoutFlag is --seat-timeout-minutes, the same on every command that sets terms.
func seatTimeoutFlag(c *cobra.Command, p *int64) {
	c.Flags().Int64Var(p, "seat-timeout-minutes", 0, "minutes without renewal after which a seat is free for another instance, while its holder still runs on its lease through an outage (at most the lease; default, or 0: the lease)")
}

// graceAndOverageFlags are --grace-days and --overage-percent, the same on
// every command that sets terms.
func graceAndOverageFlags(c *cobra.Command, grace, overage *int64) {
	c.Flags().Int64Var(grace, "grace-days", 0, "days the license keeps working after it expires (status grace; API code GRACE, with a warning)")
	c.Flags().Int64Var(overage, "overage-percent", 0, "seats allowed above max instances, in percent of them, rounded down (API code OVERAGE on those seats)")
}

func (f *licenseFlags) request(customerID, tier, recipient string) licensing.GenerateRequest {
	return licensing.GenerateRequest{
		CustomerID: customerID, Tier: tier, ExpiresDays: f.expiresDays, Features: f.features,
		MaxInstances: f.maxInstances, MaxServices: f.maxServices, MaxRequestsPerDay: f.maxRequests,
		Recipient: recipient, LeaseSeconds: f.leaseSeconds(), MaxActivationsPerDay: f.maxActPerDay,
		SeatTimeoutSeconds: f.seatTimeout * 60, GraceDays: f.graceDays, OveragePercent: f.overage,
	}
}

// graceText is a license's grace: "7 days (until 2027-01-08T10:00:00Z)",
// or "none".
func graceText(l licensing.License) string {
	switch l.GraceDays {
	case 0:
		return "none"
	case 1:
		return "1 day (until " + rfc3339(l.GraceEndsAt()) + ")"
	}
	return fmt.Sprintf("%d days (until %s)", l.GraceDays, rfc3339(l.GraceEndsAt()))
}

// overageText is a license's overage allowance: "20% (up to 6 seats)", or
// "none". The seats are what the server counts (SeatCap, rounded down),
// so that an operator reads there the seat at which TOO_MANY_INSTANCES
// starts.
func overageText(l licensing.License) string {
	if l.OveragePercent == 0 {
		return "none"
	}
	return fmt.Sprintf("%d%% (up to %d seats)", l.OveragePercent, l.SeatCap())
}

// leaseSeconds: 0 means the default (72 hours, or the license's life if shorter).
func (f *licenseFlags) leaseSeconds() int64 {
	switch {
	case f.leaseMinutes != 0:
		return f.leaseMinutes * 60
	case f.leaseHours != licensing.DefaultLeaseSeconds/3600:
		return f.leaseHours * 3600
	}
	return 0
}

// printIssued prints a new key; in human output the key is alone on the last line.
func (a *app) printIssued(title string, is licensing.Issued, notes ...string) error {
	if a.jsonOut {
		return a.printJSON(is)
	}
	fmt.Fprintln(a.stdout, title)
	c := is.Claims
	err := a.fields(
		"license id", c.LicenseID,
		"customer", c.CustomerID,
		"tier", c.Tier,
		"issued", rfc3339(c.IssuedAt),
		"expires", rfc3339(c.ExpiresAt),
		"features", orDash(strings.Join(c.Features, ", ")),
		"max instances", strconv.FormatUint(uint64(c.MaxInstances), 10),
		"max services", strconv.FormatUint(uint64(c.MaxServices), 10),
		"max requests/day", strconv.FormatUint(uint64(c.MaxRequestsPerDay), 10),
		"lease", (time.Duration(is.License.LeaseSeconds) * time.Second).String(),
		"seat timeout", is.License.SeatTimeoutText(),
		"grace", graceText(is.License),
		"overage", overageText(is.License),
		"recipient", orDash(is.License.Recipient),
	)
	for _, n := range notes {
		fmt.Fprintln(a.stdout, n)
	}
	fmt.Fprintln(a.stdout, is.Key)
	return err
}

func (a *app) generateLicenseCommand() *cobra.Command {
	var f licenseFlags
	c := &cobra.Command{
		Use: "generate-license CUSTOMER_ID TIER",
		Example: `  KEY=$(manage-licenses generate-license CUST-001 standard --expires-days 365 --features analytics,audit | tail -n 1)
  manage-licenses generate-license CUST-001 enterprise --max-instances 10
  manage-licenses generate-license CUST-001 enterprise --max-instances 5 --grace-days 14 --overage-percent 20`,
		Short: "Generate a signed license key for a customer",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			is, err := svc.Generate(c.Context(), f.request(args[0], args[1], ""))
			if err != nil {
				return err
			}
			return a.printIssued("License generated", is)
		},
	}
	f.register(c)
	return c
}

func (a *app) distributeLicenseCommand() *cobra.Command {
	var f licenseFlags
	var send bool
	c := &cobra.Command{
		Use:     "distribute-license CUSTOMER_ID EMAIL TIER",
		Example: `  manage-licenses distribute-license CUST-001 it@acme.example standard --send-email`,
		Short:   "Generate a license for a recipient and (with --send-email) email it",
		Args:    cobra.ExactArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			if err := licensing.ValidateEmail(args[1]); err != nil {
				return err
			}
			var sender mail.Sender = nomail.Sender{}
			if send {
				// Bad email configuration stops us before anything is generated.
				var err error
				if sender, err = mailwiring.Mailer(c.Context(), a.env); err != nil {
					return err
				}
			}
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			is, err := svc.Generate(c.Context(), f.request(args[0], args[2], args[1]))
			if err != nil {
				return err
			}
			if !send {
				return a.printIssued("License generated for "+args[1], is)
			}
			cust, err := svc.Customer(c.Context(), is.License.CustomerID)
			if err != nil {
				return err
			}
			res, sendErr := a.deliverer(svc, sender).License(c.Context(), licensing.Sendable{License: is.License, Customer: cust, Key: is.Key}, args[1])
			if res.Status == licensing.OutcomeSkipped {
				a.warn("%s", res.Detail)
			}
			if a.jsonOut {
				err = a.printJSON(struct {
					licensing.Issued
					Delivery delivery.Result `json:"delivery"`
				}{is, res})
			} else {
				emailLine := "Email: " + res.Detail
				if res.Status == licensing.OutcomeSkipped {
					emailLine = "Email: not sent (skipped; the warning above says why)"
				}
				err = a.printIssued("License generated for "+args[1], is, emailLine)
			}
			if sendErr != nil {
				return sendErr
			}
			return err
		},
	}
	f.register(c)
	c.Flags().BoolVar(&send, "send-email", false, "email the license to the recipient")
	return c
}

func (a *app) deliverer(svc *licensing.Service, sender mail.Sender) *delivery.Deliverer {
	return delivery.New(svc, sender, slog.New(slog.DiscardHandler))
}

func (a *app) resendLicenseCommand() *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:     "resend-license KEY_OR_LICENSE_ID --to EMAIL",
		Example: `  manage-licenses resend-license "$KEY" --to it@acme.example`,
		Short:   "Email a license's current key again",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := licensing.ValidateEmail(to); err != nil {
				return err
			}
			sender, err := mailwiring.Mailer(c.Context(), a.env)
			if err != nil {
				return err
			}
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			s, err := svc.Sendable(c.Context(), args[0])
			if err != nil {
				return err
			}
			res, err := a.deliverer(svc, sender).License(c.Context(), s, to)
			if err != nil {
				return err
			}
			if res.Status == licensing.OutcomeSkipped {
				return licensing.Errorf(licensing.CodeConfig, "%s", res.Detail)
			}
			if a.jsonOut {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "License %s: %s\n", s.License.ID, res.Detail)
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "recipient address (required)")
	requireFlags(c, "to")
	return c
}

func (a *app) renewLicenseCommand() *cobra.Command {
	var days int
	c := &cobra.Command{
		Use:     "renew-license KEY_OR_LICENSE_ID --days N",
		Example: `  manage-licenses renew-license "$KEY" --days 365`,
		Short:   "Extend a license and print a new key for it (earlier keys keep validating online)",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, wiring.Write, secretRequired)
			if err != nil {
				return err
			}
			defer done()
			is, err := svc.Renew(c.Context(), args[0], days)
			if err != nil {
				return err
			}
			return a.printIssued("License renewed", is)
		},
	}
	c.Flags().IntVar(&days, "days", 0, "days to add to the current expiry (required)")
	requireFlags(c, "days")
	return c
}

func (a *app) statusCommand(name string, to licensing.Status, short string) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:     name + " KEY_OR_LICENSE_ID",
		Example: "  manage-licenses " + name + ` "$KEY" --reason "payment overdue"`,
		Short:   short,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			svc, done, err := a.service(c, wiring.Write, secretOptional)
			if err != nil {
				return err
			}
			defer done()
			lic, err := svc.SetStatus(c.Context(), args[0], to, reason)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(lic)
			}
			fmt.Fprintf(a.stdout, "License %s of %s is now %s\n", lic.ID, lic.CustomerID, lic.Status)
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, for the event log")
	return c
}

func (a *app) listLicensesCommand() *cobra.Command {
	var customer, status string
	var limit int
	c := &cobra.Command{
		Use:   "list-licenses [--customer ID] [--status S] [--limit N]",
		Short: "List licenses (by creation, oldest first)",
		Example: `  manage-licenses list-licenses --status active
  manage-licenses list-licenses --status grace
  manage-licenses list-licenses --customer CUST-001 --limit 10 --json`,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, done, err := a.service(c, wiring.Read, secretOptional)
			if err != nil {
				return err
			}
			defer done()
			lics, err := svc.Licenses(c.Context(), customer, licensing.Status(status))
			if err != nil {
				return err
			}
			lics = limited(lics, limit)
			if a.jsonOut {
				return a.printJSON(lics)
			}
			t := newTable(a.stdout, "LICENSE", "CUSTOMER", "TIER", "STATUS", "EXPIRES", "INSTANCES", "RECIPIENT")
			for _, l := range lics {
				t.row(l.ID, l.CustomerID, l.Tier, string(l.EffectiveStatus), rfc3339(l.ExpiresAt),
					fmt.Sprintf("%d/%d", l.ActiveInstances, l.MaxInstances), orDash(l.Recipient))
			}
			return t.flush()
		},
	}
	customerFlag(c, &customer, "only this customer's licenses")
	choiceFlag(c, &status, "status", "", "only licenses in this status: active, grace (expired, within its grace days), expired, suspended or revoked",
		string(licensing.StatusActive), string(licensing.StatusGrace), string(licensing.StatusExpired), string(licensing.StatusSuspended), string(licensing.StatusRevoked))
	c.Flags().IntVar(&limit, "limit", 0, "at most N (the first N in order; 0: all)")
	return c
}

func (a *app) verifyLicenseCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "verify-license KEY",
		Example: `  manage-licenses verify-license "$KEY"`,
		Short:   "Check a key's signature offline and print its claims (CAIO_LICENSE_PUBLIC_KEY alone suffices)",
		Long: `Check a key's signature offline and print its claims. The key is checked
against CAIO_LICENSE_PUBLIC_KEY when set; otherwise against the database's
public keys, which are trusted only once the signing secret proves them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			keys, err := a.env.PublicKeys()
			if err != nil {
				return err
			}
			if keys != nil {
				return a.printVerified(wiring.NewService(nil, "cli:verify-license", wiring.Trust{Pinned: keys}, nil, nil), c, args[0])
			}
			svc, done, err := a.service(c, wiring.Read, secretOptional)
			if err != nil {
				if licensing.ErrorCode(err) == licensing.CodeDBNotFound {
					return licensing.Errorf(licensing.CodePublicKeyRequired, "no public key to verify with: set CAIO_LICENSE_PUBLIC_KEY (see 'manage-licenses public-key') or point --db at the issuing database")
				}
				return err
			}
			defer done()
			return a.printVerified(svc, c, args[0])
		},
	}
}

func (a *app) printVerified(svc *licensing.Service, c *cobra.Command, key string) error {
	claims, err := svc.VerifyKey(c.Context(), key)
	if err != nil {
		return err
	}
	expired := !time.Now().Before(claims.ExpiresAt)
	if a.jsonOut {
		return a.printJSON(map[string]any{"valid_signature": true, "expired": expired, "claims": claims})
	}
	state := "signature valid"
	if expired {
		state += ", but the license expired"
	}
	fmt.Fprintln(a.stdout, "License key: "+state)
	return a.fields(
		"license id", claims.LicenseID, "customer", claims.CustomerID, "tier", claims.Tier,
		"issued", rfc3339(claims.IssuedAt), "expires", rfc3339(claims.ExpiresAt),
		"features", orDash(strings.Join(claims.Features, ", ")),
		"max instances", strconv.FormatUint(uint64(claims.MaxInstances), 10),
		"max services", strconv.FormatUint(uint64(claims.MaxServices), 10),
		"max requests/day", strconv.FormatUint(uint64(claims.MaxRequestsPerDay), 10),
		"signing key", claims.KeyID,
	)
}

func (a *app) publicKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "public-key",
		Example: `  manage-licenses public-key`,
		Short:   "Print the key that CAIO instances embed to verify licenses offline",
		Long: `Print the current public key. With the signing secret at hand the key is
proven first (its sealed private key opens and matches) and the signing key is
created if the database has none; without it, the key is printed as the
database states it, marked unverified: anyone who can write the database file
could have put it there.`,
		RunE: func(c *cobra.Command, _ []string) error {
			secret, err := a.secret(c.Context())
			if err != nil {
				return err
			}
			access := wiring.Read
			if secret != "" {
				access = wiring.Write // may create the signing key
			}
			svc, done, err := a.service(c, access, secretOptional)
			if err != nil {
				return err
			}
			defer done()
			info, err := svc.PublicKey(c.Context())
			if err != nil {
				return err
			}
			if !info.Verified {
				a.warn("unverified: this is the public key the database states; give the signing secret to prove it before you pin it in CAIO instances")
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"public_key": licensekey.FormatPublicKey(info.PublicKey), "key_id": licensekey.KeyID(info.PublicKey), "verified": info.Verified})
			}
			_, err = fmt.Fprintln(a.stdout, licensekey.FormatPublicKey(info.PublicKey))
			return err
		},
	}
}
