package config

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
	"github.com/caio-licensing/caio-licensing/shared/mail/nomail"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
)

// More environment variables of the functions.
const (
	EnvSecretARN    = "CAIO_LICENSE_SECRET_ARN"
	EnvReminderDays = "CAIO_REMINDER_DAYS"
	EnvLogLevel     = "CAIO_LOG_LEVEL"
)

// DefaultReminderDays are the reminder thresholds when CAIO_REMINDER_DAYS is unset.
var DefaultReminderDays = []int{30, 7, 1}

// Needs says what a function may hold: least privilege by construction.
type Needs struct {
	// Secret: the function mints keys (generate, distribute).
	Secret bool
	// PublicKey: the function verifies keys with CAIO_LICENSE_PUBLIC_KEY
	// and nothing else (activate).
	PublicKey bool
	// Mail: the function sends email (distribute, reminders).
	Mail bool
	// ServerKey: the function signs its answers with the certified server
	// key (activate): CAIO_SERVER_KEY_ARN, or CAIO_SERVER_KEY locally.
	ServerKey bool
	// SecretPolicy judges the secret (secretstrength.Check), for the
	// functions that may create the signing key; the mains that need it
	// link it, so that the others do not pay for its dictionaries.
	SecretPolicy func(string) error
}

// Function is a wired function: its service, logger and settings.
type Function struct {
	Name         string
	Service      *licensing.Service
	Log          *slog.Logger
	ReminderDays []int
	// Mailer is the email provider (mail.None when not needed or not configured).
	Mailer mail.Sender
	// Signer signs the API's answers (activate only).
	Signer *httpapi.Signer
	// Store is the database.
	Store Store
	// Metrics writes CloudWatch EMF lines on stdout.
	Metrics metrics.Sink
	close   func()
}

// Close releases the store.
func (f *Function) Close() { f.close() }

// NewLogger returns the JSON logger every function and the server use.
func NewLogger(w io.Writer, name string) *slog.Logger {
	level := slog.LevelInfo
	if v := os.Getenv(EnvLogLevel); v != "" {
		level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With(slog.String("function", name))
}

// LoadFunction wires a function from its environment at cold start.
func LoadFunction(ctx context.Context, name string, needs Needs) (*Function, error) {
	log := NewLogger(os.Stdout, name)
	sink := metrics.NewEMF(os.Stdout, "Function", name)
	path := os.Getenv(EnvDBPath)
	if path == "" {
		return nil, licensing.Errorf(licensing.CodeConfig, "%s is not set: give the function its database path", EnvDBPath)
	}
	cfg := licensing.Config{Actor: "function:" + name, Warn: func(msg string) { log.Warn(msg) }, SecretPolicy: needs.SecretPolicy, Metrics: sink}
	if needs.Secret {
		secret, err := Secret(ctx)
		if err != nil {
			return nil, err
		}
		cfg.Secret = secret
	}
	if needs.PublicKey {
		keys, err := PublicKeys()
		if err != nil {
			return nil, err
		}
		if keys == nil {
			return nil, licensing.Errorf(licensing.CodeConfig, "%s is not set: give the function the key printed by 'manage-licenses public-key'", EnvPublicKey)
		}
		cfg.PublicKeys = keys
	}
	days, err := ReminderDays()
	if err != nil {
		return nil, err
	}
	var mailer mail.Sender = nomail.Sender{}
	if needs.Mail {
		if mailer, err = Mailer(ctx); err != nil {
			return nil, err
		}
	}
	store, err := OpenStoreWith(ctx, DB{Path: path, Source: EnvDBPath}, Write, sink)
	if err != nil {
		return nil, err
	}
	cfg.Store = store
	fn := &Function{Name: name, Service: licensing.New(cfg), Log: log, ReminderDays: days, Mailer: mailer, Store: store, Metrics: sink, close: func() { store.Close() }}
	if needs.ServerKey {
		key, err := ServerKeyFromEnv(ctx)
		if err == nil && key == nil {
			err = licensing.Errorf(licensing.CodeConfig, "%s is not set: give the function the server key that 'manage-licenses certify-server-key' made", EnvServerKeyARN)
		}
		if err == nil {
			fn.Signer, err = Signer(ctx, fn.Service, key)
		}
		if err != nil {
			store.Close()
			return nil, err
		}
	}
	return fn, nil
}

// Secret returns CAIO_LICENSE_SECRET, or reads the secret named by
// CAIO_LICENSE_SECRET_ARN from Secrets Manager.
func Secret(ctx context.Context) (string, error) {
	if s := os.Getenv(EnvSecret); s != "" {
		return s, nil
	}
	arn := os.Getenv(EnvSecretARN)
	if arn == "" {
		return "", licensing.Errorf(licensing.CodeSecretRequired, "no signing secret: set %s (or %s locally)", EnvSecretARN, EnvSecret)
	}
	return SecretFromARN(ctx, arn)
}

// SecretFromARN reads the signing secret from the Secrets Manager secret
// arn (an ARN or a name).
func SecretFromARN(ctx context.Context, arn string) (string, error) {
	s, err := awssecret.Fetch(ctx, arn)
	if err != nil {
		return "", licensing.Wrap(licensing.CodeConfig, err, "cannot read the signing secret from Secrets Manager: %v", err)
	}
	return s, nil
}

// ReminderDays parses CAIO_REMINDER_DAYS ("30,7,1").
func ReminderDays() ([]int, error) {
	v := os.Getenv(EnvReminderDays)
	if v == "" {
		return DefaultReminderDays, nil
	}
	var days []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > licensing.MaxDays {
			return nil, licensing.Errorf(licensing.CodeConfig, "%s=%q: want whole days separated by commas, such as 30,7,1", EnvReminderDays, v)
		}
		days = append(days, n)
	}
	return days, nil
}

// Fatal reports a cold-start failure as one JSON log line and exits.
func Fatal(name string, err error) {
	NewLogger(os.Stderr, name).Error("cold start failed",
		slog.String("code", string(licensing.ErrorCode(err))), slog.String("detail", licensing.ErrorMessage(err)))
	os.Exit(1)
}
