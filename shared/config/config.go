// Package config turns the environment and flags into a store and a
// licensing service, the same way for the CLI and every function.
package config

import (
	"context"
	"errors"
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
	// Source is where Path came from ("--db", CAIO_LICENSE_DB_PATH, or ""
	// for the default): a hint names what the operator actually used.
	Source string
}

// Explicit: the operator named the path. Such a path must exist, so that a
// typo never creates a new database.
func (db DB) Explicit() bool { return db.Source != "" }

// ResolveDB picks the database: the flag, else CAIO_LICENSE_DB_PATH, else
// ~/.caio/caio_licenses.db.
func ResolveDB(flag string) (DB, error) {
	if flag != "" {
		p, err := expandHome(flag, "--db")
		return DB{Path: p, Source: "--db"}, err
	}
	if p := os.Getenv(EnvDBPath); p != "" {
		p, err := expandHome(p, EnvDBPath)
		return DB{Path: p, Source: EnvDBPath}, err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return DB{}, licensing.Errorf(licensing.CodeConfig, "cannot find the home directory for the default database: set CAIO_LICENSE_DB_PATH")
	}
	return DB{Path: filepath.Join(home, ".caio", "caio_licenses.db")}, nil
}

// expandHome expands a leading ~ the way a shell would have: a path
// quoted in a file or a unit (CAIO_LICENSE_DB_PATH="~/x.db") reaches us
// unexpanded, and would otherwise become a directory named "~". Another
// user's ~name is refused: we do not look up accounts.
func expandHome(p, source string) (string, error) {
	code := licensing.CodeConfig
	if strings.HasPrefix(source, "--") {
		code = licensing.CodeBadRequest // a flag: a mistake in the command line
	}
	if p != "~" && !strings.HasPrefix(p, "~/") {
		if strings.HasPrefix(p, "~") {
			return "", licensing.Errorf(code, "%s %q: only ~ or ~/ (your home) is expanded; write the full path", source, p)
		}
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", licensing.Errorf(code, "%s %q starts with ~ but there is no home directory (HOME): write the full path", source, p)
	}
	return filepath.Join(home, p[1:]), nil
}

// hint is what to do about a database that is missing or is not one,
// naming what the operator used to point at it.
func (db DB) hint(missing bool) string {
	switch {
	case db.Source == "--db" && missing:
		// Unquoted around the command, so that a quoted path stays one
		// that pastes into a shell as it is.
		return "check --db, or create it with: manage-licenses init-db --db " + shellQuote(db.Path)
	case db.Source == "--db":
		return "check --db"
	case missing && db.Source != "":
		return "create it with 'manage-licenses init-db', or check " + db.Source
	case db.Source != "":
		return "check " + db.Source
	case missing:
		return "create it with 'manage-licenses init-db', or name another with --db PATH or " + EnvDBPath
	}
	return "name another with --db PATH or " + EnvDBPath
}

// explain adds the hint to the errors that a wrong path causes.
func (db DB) explain(err error) error {
	var e *licensing.Error
	switch {
	case !errors.As(err, &e):
		return err
	case e.Code == licensing.CodeDBNotFound:
		return licensing.Wrap(e.Code, err, "%s: %s", e.Message, db.hint(true))
	case errors.Is(err, sqlitestore.ErrWrongFile):
		return licensing.Wrap(e.Code, err, "%s: %s", e.Message, db.hint(false))
	}
	return err
}

// shellQuote quotes s for a POSIX shell when it needs it, so that a
// printed command runs as printed.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@%,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
		// S3 meets the database at the first transaction, not here.
		return s3store.OpenWith(ctx, db.Path, s3store.Options{CacheDir: os.Getenv(EnvCacheDir), History: history, Metrics: m, Explain: db.explain})
	}
	opt := sqlitestore.Options{
		Create:          access == Init || (access == Write && !db.Explicit()),
		SkipSchemaCheck: access == Init,
	}
	st, err := sqlitestore.Open(ctx, db.Path, opt)
	if err != nil {
		return nil, db.explain(err)
	}
	return st, nil
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
