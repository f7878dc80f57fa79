// Package mailwiring builds the email provider the environment chooses. It
// is apart from package wiring so that what sends no email (the activate
// function first) does not link the providers: the SES client's schemas,
// go-mail and the templates it brings are initialised at every start of
// a program that links them.
package mailwiring

import (
	"context"

	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
	"github.com/caio-licensing/caio-licensing/shared/mail/nomail"
	"github.com/caio-licensing/caio-licensing/shared/mail/sesmail"
	"github.com/caio-licensing/caio-licensing/shared/mail/smtpmail"
)

func configError(format string, args ...any) error {
	return licensing.Errorf(licensing.CodeConfig, format, args...)
}

// Mailer builds the email provider the environment chooses (config.Mail):
// SES, SMTP, or none. SES with SMTP configured falls back to SMTP when SES
// fails.
func Mailer(ctx context.Context, env config.Env) (mail.Sender, error) {
	m, err := env.Mail()
	if err != nil {
		return nil, err
	}
	switch m.Provider {
	case config.ProviderSMTP:
		return smtpSender(ctx, m.SMTP)
	case config.ProviderSES:
		ses, err := sesmail.New(ctx, m.SESSender)
		if err != nil {
			return nil, configError("%v", err)
		}
		if m.SMTP == nil {
			return ses, nil
		}
		smtp, err := smtpSender(ctx, m.SMTP)
		if err != nil {
			return nil, err
		}
		return mail.Fallback{Primary: ses, Secondary: smtp}, nil
	}
	return nomail.Sender{}, nil
}

func smtpSender(ctx context.Context, c *config.SMTP) (mail.Sender, error) {
	password := c.Password
	if password == "" && c.PasswordARN != "" {
		p, err := awssecret.Fetch(ctx, c.PasswordARN)
		if err != nil {
			return nil, configError("cannot read the SMTP password from Secrets Manager: %v", err)
		}
		password = p
	}
	s, err := smtpmail.New(smtpmail.Config{
		Server: c.Server, Port: c.Port, User: c.User, Password: password,
		Sender: c.Sender, TLS: c.TLS, CAFile: c.CAFile,
	})
	if err != nil {
		return nil, configError("%v", err)
	}
	return s, nil
}
