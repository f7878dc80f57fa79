// Package wiring builds what the functions, the CLI's commands and serve
// run on: the store the configuration names, the licensing service with the
// keys it may hold, the mailer, the server key and signer, and
// maintenance. It is the one place where configuration meets the
// packages that do the work; the mains only call it.
package wiring

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Access says what a command will do with the database.
type Access int

// Access modes.
const (
	// Read needs an existing database.
	Read Access = iota
	// Write creates the default database on first use.
	Write
	// Init creates any database and migrates an existing one forward.
	Init
)

// Store is a database, local or in S3.
type Store interface {
	licensing.Store
	// Migrate creates the database if needed and brings its schema up to
	// date; it returns the version it found.
	Migrate(ctx context.Context) (int, error)
	// Backup writes a consistent copy to a local file.
	Backup(ctx context.Context, dest string) error
	// Restore makes the database file src the current state.
	Restore(ctx context.Context, src string) error
	// Location names the database for messages.
	Location() string
	// Archive is where history older than the retention goes.
	Archive() licensing.Archive
	// Size is the database's size; FreeBytes its free pages' space.
	Size(ctx context.Context) (int64, error)
	FreeBytes(ctx context.Context) (int64, error)
	// Vacuum compacts the database.
	Vacuum(ctx context.Context) error
}

// OpenStore opens the database for the given access, reporting S3 commits
// to m (nil for none): s3://bucket/key for S3 mode (caching in
// CAIO_LICENSE_CACHE_DIR), else a local file.
func OpenStore(ctx context.Context, env config.Env, db config.DB, access Access, m metrics.Sink) (Store, error) {
	return openStore(ctx, env, db, access, s3store.Options{Metrics: m})
}

// openStore is OpenStore with the S3 store's options its caller decides
// (the functions': who publishes snapshots, who prunes history); the
// environment gives the rest.
func openStore(ctx context.Context, env config.Env, db config.DB, access Access, s3opt s3store.Options) (Store, error) {
	if db.InS3() {
		history, err := env.HistoryDays()
		if err != nil {
			return nil, err
		}
		s3opt.CacheDir, s3opt.History, s3opt.Explain = env.CacheDir(), history, explainer(db)
		// S3 meets the database at the first transaction, not here.
		return s3store.OpenWith(ctx, db.Path, s3opt)
	}
	opt := sqlitestore.Options{
		Create:          access == Init || (access == Write && !db.Explicit()),
		SkipSchemaCheck: access == Init,
	}
	st, err := sqlitestore.Open(ctx, db.Path, opt)
	if err != nil {
		return nil, explainer(db)(err)
	}
	return st, nil
}

// explainer adds to the errors a wrong path causes what to do about them,
// naming what the operator used to point at the database.
func explainer(db config.DB) func(error) error {
	return func(err error) error {
		var e *licensing.Error
		switch {
		case !errors.As(err, &e):
			return err
		case e.Code == licensing.CodeDBNotFound:
			return licensing.Wrap(e.Code, err, "%s: %s", e.Message, db.Hint(true))
		case errors.Is(err, sqlitestore.ErrWrongFile):
			return licensing.Wrap(e.Code, err, "%s: %s", e.Message, db.Hint(false))
		}
		return err
	}
}

// Trust is what a service may hold to tell genuine license keys from
// forged ones, and to mint them: least privilege is choosing less.
type Trust struct {
	// Secret opens the sealed signing key (minting, revealing keys).
	Secret string
	// Pinned public keys are the only ones trusted (the activate
	// function, serve once started).
	Pinned licensekey.PublicKeys
	// Memory remembers keys the secret proved on this machine (the CLI's
	// trusted-keys file); nil for none.
	Memory KeyMemory
	// Unproven trusts the database's public keys as they are (serve
	// without the secret, with a warning).
	Unproven bool
	// Policy judges a secret before a signing key is sealed under it.
	Policy func(string) error
}

// KeyMemory remembers, per database location, public keys the secret has
// proven.
type KeyMemory interface {
	Keys(location string) licensekey.PublicKeys
	Remember(location string, keys []ed25519.PublicKey)
}

// NewService is the licensing service on store, acting as actor, holding
// what trust gives it. It is the one place a licensing.Config is built.
func NewService(store Store, actor string, trust Trust, warn func(string), m metrics.Sink) *licensing.Service {
	cfg := licensing.Config{Store: store, Actor: actor, Secret: trust.Secret, PublicKeys: trust.Pinned,
		TrustUnprovenKeys: trust.Unproven, SecretPolicy: trust.Policy, Warn: warn, Metrics: m}
	if trust.Memory != nil {
		loc := store.Location()
		cfg.RememberedKeys = trust.Memory.Keys(loc)
		cfg.OnProven = func(pubs []ed25519.PublicKey) { trust.Memory.Remember(loc, pubs) }
	}
	return licensing.New(cfg)
}
