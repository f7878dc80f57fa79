// Package smtpmail sends email through an SMTP server (go-mail: context,
// timeouts, STARTTLS, authentication).
package smtpmail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/caio-licensing/caio-licensing/shared/mail"
)

// Config is an SMTP server and account.
type Config struct {
	Server   string
	Port     int
	User     string
	Password string
	Sender   string
	// CAFile, when set, is a PEM bundle of the CAs that the server's
	// certificate may chain to (a private CA on premises).
	CAFile string
	// TLS: "starttls" (default: required when the port is not 25),
	// "opportunistic", or "none" (only for a relay on localhost).
	TLS     string
	Timeout time.Duration
}

// Sender sends through one SMTP server.
type Sender struct {
	cfg  Config
	opts []gomail.Option
}

var _ mail.Sender = (*Sender)(nil)

// New checks cfg and returns a sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Server == "" {
		return nil, errors.New("CAIO_SMTP_SERVER is not set")
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("CAIO_SMTP_PORT %d is not a port", cfg.Port)
	}
	if err := mail.ValidateAddress(cfg.Sender); err != nil {
		return nil, fmt.Errorf("CAIO_SMTP_SENDER: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout)}
	switch cfg.TLS {
	case "", "starttls":
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
	case "opportunistic":
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSOpportunistic))
	case "none":
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("CAIO_SMTP_TLS %q: use starttls, opportunistic or none", cfg.TLS)
	}
	tlsConfig := &tls.Config{ServerName: cfg.Server, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CAIO_SMTP_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CAIO_SMTP_CA_FILE %s holds no PEM certificate", cfg.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	opts = append(opts, gomail.WithTLSConfig(tlsConfig))
	if cfg.User != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.User), gomail.WithPassword(cfg.Password))
	}
	return &Sender{cfg: cfg, opts: opts}, nil
}

// Name implements mail.Sender.
func (s *Sender) Name() string { return "smtp" }

// Send implements mail.Sender.
func (s *Sender) Send(ctx context.Context, m mail.Message) (mail.Receipt, error) {
	if err := m.Check(); err != nil {
		return mail.Receipt{}, err
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.Sender); err != nil {
		return mail.Receipt{}, fmt.Errorf("sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return mail.Receipt{}, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	client, err := gomail.NewClient(s.cfg.Server, s.opts...)
	if err != nil {
		return mail.Receipt{}, fmt.Errorf("SMTP client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return mail.Receipt{}, fmt.Errorf("SMTP %s:%d: %w", s.cfg.Server, s.cfg.Port, err)
	}
	return mail.Receipt{Provider: "smtp", MessageID: msg.GetMessageID()}, nil
}
