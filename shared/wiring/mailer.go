package config

import (
	"context"
	"os"
	"strconv"

	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
	"github.com/caio-licensing/caio-licensing/shared/mail/nomail"
	"github.com/caio-licensing/caio-licensing/shared/mail/sesmail"
	"github.com/caio-licensing/caio-licensing/shared/mail/smtpmail"
)

// Email environment variables (the guide's SMTP ones, SES, the choice).
const (
	EnvEmailProvider   = "CAIO_EMAIL_PROVIDER"
	EnvSESSender       = "CAIO_SES_SENDER"
	EnvSMTPServer      = "CAIO_SMTP_SERVER"
	EnvSMTPPort        = "CAIO_SMTP_PORT"
	EnvSMTPUser        = "CAIO_SMTP_USER"
	EnvSMTPPassword    = "CAIO_SMTP_PASSWORD"
	EnvSMTPPasswordARN = "CAIO_SMTP_PASSWORD_SECRET_ARN"
	EnvSMTPSender      = "CAIO_SMTP_SENDER"
	EnvSMTPTLS         = "CAIO_SMTP_TLS"
	EnvSMTPCAFile      = "CAIO_SMTP_CA_FILE"
	defaultSMTPPort    = 587
	providerSES        = "ses"
	providerSMTP       = "smtp"
	providerNone       = "none"
)

func configError(format string, args ...any) error {
	return licensing.Errorf(licensing.CodeConfig, format, args...)
}

// Mailer chooses the email provider: CAIO_EMAIL_PROVIDER when set, else
// SES when CAIO_SES_SENDER is set, else SMTP when CAIO_SMTP_SERVER is set,
// else none. SES with SMTP configured falls back to SMTP when SES fails.
func Mailer(ctx context.Context) (mail.Sender, error) {
	provider := os.Getenv(EnvEmailProvider)
	sesSender, smtpServer := os.Getenv(EnvSESSender), os.Getenv(EnvSMTPServer)
	if provider == "" {
		switch {
		case sesSender != "":
			provider = providerSES
		case smtpServer != "":
			provider = providerSMTP
		default:
			provider = providerNone
		}
	}
	switch provider {
	case providerNone:
		return nomail.Sender{}, nil
	case providerSMTP:
		if smtpServer == "" {
			return nil, configError("CAIO_EMAIL_PROVIDER=smtp but CAIO_SMTP_SERVER is not set")
		}
		return smtpSender(ctx)
	case providerSES:
		if sesSender == "" {
			return nil, configError("CAIO_EMAIL_PROVIDER=ses but CAIO_SES_SENDER (a verified sender address) is not set")
		}
		ses, err := sesmail.New(ctx, sesSender)
		if err != nil {
			return nil, configError("%v", err)
		}
		if smtpServer == "" {
			return ses, nil
		}
		smtp, err := smtpSender(ctx)
		if err != nil {
			return nil, err
		}
		return mail.Fallback{Primary: ses, Secondary: smtp}, nil
	}
	return nil, configError("CAIO_EMAIL_PROVIDER=%q: use ses, smtp or none", provider)
}

func smtpSender(ctx context.Context) (mail.Sender, error) {
	port := defaultSMTPPort
	if v := os.Getenv(EnvSMTPPort); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return nil, configError("CAIO_SMTP_PORT=%q is not a port number", v)
		}
		port = p
	}
	password := os.Getenv(EnvSMTPPassword)
	if arn := os.Getenv(EnvSMTPPasswordARN); password == "" && arn != "" {
		p, err := awssecret.Fetch(ctx, arn)
		if err != nil {
			return nil, configError("cannot read the SMTP password from Secrets Manager: %v", err)
		}
		password = p
	}
	sender := os.Getenv(EnvSMTPSender)
	if sender == "" {
		return nil, configError("CAIO_SMTP_SENDER is not set: the address licenses are sent from")
	}
	s, err := smtpmail.New(smtpmail.Config{
		Server: os.Getenv(EnvSMTPServer), Port: port, User: os.Getenv(EnvSMTPUser), Password: password,
		Sender: sender, TLS: os.Getenv(EnvSMTPTLS), CAFile: os.Getenv(EnvSMTPCAFile),
	})
	if err != nil {
		return nil, configError("%v", err)
	}
	return s, nil
}
