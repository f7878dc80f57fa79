// Package config turns the environment and flags into a store and a
// licensing service, the same way for the CLI and every function.
package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Environment variables (docs/operator-guide.md lists them all).
const (
	EnvDBPath    = "CAIO_LICENSE_DB_PATH"
	EnvSecret    = "CAIO_LICENSE_SECRET"
	EnvPublicKey = "CAIO_LICENSE_PUBLIC_KEY"
	EnvCacheDir  = "CAIO_LICENSE_CACHE_DIR"
)

// MinSecretLen is the length below which a secret earns a warning.
const MinSecretLen = 16

// DB says where the database lives and whether the operator named it.
type DB struct {
	Path string
	// Explicit is true when the path came from --db or CAIO_LICENSE_DB_PATH:
	// such a path must exist, so that a typo never creates a new database.
	Explicit bool
}

// ResolveDB picks the database: the flag, else CAIO_LICENSE_DB_PATH, else
// ~/.caio/caio_licenses.db.
func ResolveDB(flag string) (DB, error) {
	if flag != "" {
		return DB{Path: flag, Explicit: true}, nil
	}
	if p := os.Getenv(EnvDBPath); p != "" {
		return DB{Path: p, Explicit: true}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return DB{}, licensing.Errorf(licensing.CodeConfig, "cannot find the home directory for the default database: set CAIO_LICENSE_DB_PATH")
	}
	return DB{Path: filepath.Join(home, ".caio", "caio_licenses.db")}, nil
}

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

// OpenStore opens the database for the given access: s3://bucket/key for
// S3 mode (caching in CAIO_LICENSE_CACHE_DIR), else a local file.
func OpenStore(ctx context.Context, db DB, access Access) (Store, error) {
	return OpenStoreWith(ctx, db, access, nil)
}

// OpenStoreWith is OpenStore reporting S3 commits to m.
func OpenStoreWith(ctx context.Context, db DB, access Access, m metrics.Sink) (Store, error) {
	if strings.HasPrefix(db.Path, "s3://") {
		history, err := HistoryDays()
		if err != nil {
			return nil, err
		}
		return s3store.OpenWith(ctx, db.Path, s3store.Options{CacheDir: os.Getenv(EnvCacheDir), History: history, Metrics: m})
	}
	opt := sqlitestore.Options{
		Create:          access == Init || (access == Write && !db.Explicit),
		SkipSchemaCheck: access == Init,
	}
	return sqlitestore.Open(ctx, db.Path, opt)
}

// PublicKeys reads CAIO_LICENSE_PUBLIC_KEY; nil when it is unset.
func PublicKeys() (licensekey.PublicKeys, error) {
	v := os.Getenv(EnvPublicKey)
	if v == "" {
		return nil, nil
	}
	keys, err := licensekey.ParsePublicKeys(v)
	if err != nil {
		return nil, licensing.Errorf(licensing.CodeConfig, "CAIO_LICENSE_PUBLIC_KEY: %v", err)
	}
	return keys, nil
}
