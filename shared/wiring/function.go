package wiring

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
	"github.com/caio-licensing/caio-licensing/shared/mail/nomail"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
)

// Needs says what a function may hold: least privilege by construction.
type Needs struct {
	// Secret: the function mints keys (generate, distribute).
	Secret bool
	// PublicKey: the function verifies keys with CAIO_LICENSE_PUBLIC_KEY
	// and nothing else (activate).
	PublicKey bool
	// Mailer builds the email provider for the functions that send email
	// (distribute, reminders: mailwiring.Mailer); nil for none. The mains
	// that need it link it, so that the others do not pay for the
	// providers' packages at every start.
	Mailer func(context.Context, config.Env) (mail.Sender, error)
	// ServerKey: the function signs its answers with the certified server
	// key (activate): CAIO_SERVER_KEY_ARN, or CAIO_SERVER_KEY locally.
	ServerKey bool
	// SecretPolicy judges the secret (secretstrength.Check), for the
	// functions that may create the signing key; the mains that need it
	// link it, so that the others do not pay for its dictionaries.
	SecretPolicy func(string) error
	// Snapshots: the function publishes the database's snapshot when
	// asked (Function.Snapshot: the reminders function's frequent
	// schedule). Whatever this says, no function publishes in the
	// background of its writes (s3store.SnapshotOnRequest): the others,
	// the internet-facing one first, only create deltas and need no write
	// right on the snapshot. Nor does any function prune S3 history: the
	// template's lifecycle rules expire it (s3store.Options.HistoryByLifecycle),
	// and no function role may delete.
	Snapshots bool
}

// SnapshotPublisher is a store that publishes its snapshot when asked (the
// S3 store).
type SnapshotPublisher interface {
	PublishSnapshot(ctx context.Context) (s3store.SnapshotReport, error)
}

var _ SnapshotPublisher = (*s3store.Store)(nil)

// functionStoreOptions are the S3 store's options every function opens its
// database with: writes only create deltas (a process Lambda freezes
// between invocations is no place for background uploads, and the
// internet-facing function holds no right to publish), and history past
// the window is left to the bucket's lifecycle rules.
func functionStoreOptions(m metrics.Sink) s3store.Options {
	return s3store.Options{Metrics: m, Snapshots: s3store.SnapshotOnRequest, HistoryByLifecycle: true}
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
	// Snapshot publishes the database's snapshot when one is due (Needs.
	// Snapshots, a database in S3); nil otherwise.
	Snapshot func(context.Context) (any, error)
	// Env is the environment it was wired from, for settings of its own.
	Env   config.Env
	close func()
}

// Close releases the store.
func (f *Function) Close() { f.close() }

// NewLogger returns the JSON logger every function and the server use.
func NewLogger(w io.Writer, env config.Env, name string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: env.LogLevel()})).With(slog.String("function", name))
}

// LoadFunction wires a function from its environment at cold start.
func LoadFunction(ctx context.Context, env config.Env, name string, needs Needs) (*Function, error) {
	log := NewLogger(os.Stdout, env, name)
	sink := metrics.NewEMF(os.Stdout, "Function", name)
	path := env.Get(config.EnvDBPath)
	if path == "" {
		return nil, licensing.Errorf(licensing.CodeConfig, "%s is not set: give the function its database path", config.EnvDBPath)
	}
	trust := Trust{Policy: needs.SecretPolicy}
	if needs.Secret {
		secret, err := Secret(ctx, env)
		if err != nil {
			return nil, err
		}
		trust.Secret = secret
	}
	if needs.PublicKey {
		keys, err := env.PublicKeys()
		if err != nil {
			return nil, err
		}
		if keys == nil {
			return nil, licensing.Errorf(licensing.CodeConfig, "%s is not set: give the function the key printed by 'manage-licenses public-key'", config.EnvPublicKey)
		}
		trust.Pinned = keys
	}
	days, err := env.ReminderDays()
	if err != nil {
		return nil, err
	}
	var mailer mail.Sender = nomail.Sender{}
	if needs.Mailer != nil {
		if mailer, err = needs.Mailer(ctx, env); err != nil {
			return nil, err
		}
	}
	// The server key is read while the database opens and loads: from
	// Secrets Manager it is a round trip, which a database in S3 then
	// overlaps (signerAsKeyArrives), and its first use runs Ed25519's
	// self-test (about 1 ms). Once: the read started here is the one every
	// later call waits for, a store's re-run read included.
	serverKey := sync.OnceValues(func() (ed25519.PrivateKey, error) {
		key, err := ServerKeyFromEnv(ctx, env)
		if err == nil && key == nil {
			err = licensing.Errorf(licensing.CodeConfig, "%s is not set: give the function the server key that 'manage-licenses certify-server-key' made", config.EnvServerKeyARN)
		}
		return key, err
	})
	if needs.ServerKey {
		go serverKey()
	}
	store, err := openStore(ctx, env, config.DB{Path: path, Source: config.EnvDBPath}, Write, functionStoreOptions(sink))
	if err != nil {
		return nil, err
	}
	svc := NewService(store, "function:"+name, trust, func(msg string) { log.Warn(msg) }, sink)
	fn := &Function{Name: name, Service: svc, Log: log, ReminderDays: days, Mailer: mailer, Store: store, Metrics: sink, Env: env, close: func() { store.Close() }}
	if p, ok := store.(SnapshotPublisher); ok && needs.Snapshots {
		fn.Snapshot = func(ctx context.Context) (any, error) { return p.PublishSnapshot(ctx) }
	}
	if needs.ServerKey {
		if fn.Signer, err = signerAsKeyArrives(ctx, svc, serverKey); err != nil {
			store.Close()
			return nil, err
		}
	}
	return fn, nil
}

// Secret returns CAIO_LICENSE_SECRET, or reads the secret named by
// CAIO_LICENSE_SECRET_ARN from Secrets Manager.
func Secret(ctx context.Context, env config.Env) (string, error) {
	value, arn := env.Secret()
	switch {
	case value != "":
		return value, nil
	case arn == "":
		return "", licensing.Errorf(licensing.CodeSecretRequired, "no signing secret: set %s (or %s locally)", config.EnvSecretARN, config.EnvSecret)
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

// Fatal reports a cold-start failure as one JSON log line and exits.
func Fatal(name string, err error) {
	NewLogger(os.Stderr, config.OS(), name).Error("cold start failed",
		slog.String("code", string(licensing.ErrorCode(err))), slog.String("detail", licensing.ErrorMessage(err)))
	os.Exit(1)
}
