package config

import (
	"strconv"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Email providers.
const (
	ProviderSES  = "ses"
	ProviderSMTP = "smtp"
	ProviderNone = "none"
)

const defaultSMTPPort = 587

// Mail is how email goes out, as the environment says.
type Mail struct {
	// Provider: CAIO_EMAIL_PROVIDER when set, else ses when
	// CAIO_SES_SENDER is set, else smtp when CAIO_SMTP_SERVER is set,
	// else none.
	Provider  string
	SESSender string
	// SMTP is set whenever CAIO_SMTP_SERVER is: with SES, it is the
	// fallback when SES fails.
	SMTP *SMTP
}

// SMTP is the SMTP server's settings (the guide's variables).
type SMTP struct {
	Server, User, Sender, TLS, CAFile string
	Port                              int
	// Password, else PasswordARN: the Secrets Manager secret holding it.
	Password, PasswordARN string
}

func configError(format string, args ...any) error {
	return licensing.Errorf(licensing.CodeConfig, format, args...)
}

// Mail reads the email settings and checks that the chosen provider has
// what it needs.
func (e Env) Mail() (Mail, error) {
	m := Mail{Provider: e(EnvEmailProvider), SESSender: e(EnvSESSender)}
	smtpServer := e(EnvSMTPServer)
	if m.Provider == "" {
		switch {
		case m.SESSender != "":
			m.Provider = ProviderSES
		case smtpServer != "":
			m.Provider = ProviderSMTP
		default:
			m.Provider = ProviderNone
		}
	}
	switch m.Provider {
	case ProviderNone:
		return m, nil
	case ProviderSMTP:
		if smtpServer == "" {
			return m, configError("CAIO_EMAIL_PROVIDER=smtp but CAIO_SMTP_SERVER is not set")
		}
	case ProviderSES:
		if m.SESSender == "" {
			return m, configError("CAIO_EMAIL_PROVIDER=ses but CAIO_SES_SENDER (a verified sender address) is not set")
		}
	default:
		return m, configError("CAIO_EMAIL_PROVIDER=%q: use ses, smtp or none", m.Provider)
	}
	if smtpServer == "" {
		return m, nil
	}
	s := &SMTP{Server: smtpServer, Port: defaultSMTPPort, User: e(EnvSMTPUser), Sender: e(EnvSMTPSender),
		TLS: e(EnvSMTPTLS), CAFile: e(EnvSMTPCAFile), Password: e(EnvSMTPPassword), PasswordARN: e(EnvSMTPPasswordARN)}
	if v := e(EnvSMTPPort); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return m, configError("CAIO_SMTP_PORT=%q is not a port number", v)
		}
		s.Port = p
	}
	if s.Sender == "" {
		return m, configError("CAIO_SMTP_SENDER is not set: the address licenses are sent from")
	}
	m.SMTP = s
	return m, nil
}
