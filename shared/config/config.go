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
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Environment variables (README.md lists them all).
const (
	EnvDBPath    = "CAIO_LICENSE_DB_PATH"
	EnvSecret    = "CAIO_LICENSE_SECRET"
	EnvPublicKey = "CAIO_LICENSE_PUBLIC_KEY"
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

// OpenStore opens the database for the given access.
func OpenStore(ctx context.Context, db DB, access Access) (*sqlitestore.Store, error) {
	if strings.HasPrefix(db.Path, "s3://") {
		return nil, licensing.Errorf(licensing.CodeConfig, "database %s: S3 mode is not available in this build yet; use a local path", db.Path)
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
