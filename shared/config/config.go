// Package config reads the license server's settings from the environment:
// the variables' names, their defaults, and the checks that turn a wrong
// value into a CONFIG error naming the variable. It opens and builds
// nothing; package wiring does that with what it reads.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Environment variables (docs/operator-guide.md lists them all).
const (
	EnvDBPath          = "CAIO_LICENSE_DB_PATH"
	EnvSecret          = "CAIO_LICENSE_SECRET"
	EnvSecretARN       = "CAIO_LICENSE_SECRET_ARN"
	EnvPublicKey       = "CAIO_LICENSE_PUBLIC_KEY"
	EnvCacheDir        = "CAIO_LICENSE_CACHE_DIR"
	EnvReminderDays    = "CAIO_REMINDER_DAYS"
	EnvLogLevel        = "CAIO_LOG_LEVEL"
	EnvRetentionDays   = "CAIO_EVENT_RETENTION_DAYS"
	EnvHistoryDays     = "CAIO_S3_HISTORY_DAYS"
	EnvServerKey       = "CAIO_SERVER_KEY"     // base64, for serve and local runs
	EnvServerKeyARN    = "CAIO_SERVER_KEY_ARN" // Secrets Manager, for the activate function
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
)

// Env is where settings are read from: the process's environment (OS), or
// a test's own (Map), so that a command runs in-process with the
// environment it is given.
type Env func(name string) string

// OS reads the process's environment.
func OS() Env { return os.Getenv }

// Map reads the variables of m and nothing else.
func Map(m map[string]string) Env { return func(name string) string { return m[name] } }

// Get returns the variable name ("" when unset).
func (e Env) Get(name string) string { return e(name) }

// Home is the user's home directory ($HOME), as os.UserHomeDir finds it.
func (e Env) Home() (string, error) {
	if h := e("HOME"); h != "" {
		return h, nil
	}
	return "", licensing.Errorf(licensing.CodeConfig, "$HOME is not defined")
}

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

// InS3 reports whether the database is an S3 object (s3://bucket/key).
func (db DB) InS3() bool { return strings.HasPrefix(db.Path, "s3://") }

// DB picks the database: the flag, else CAIO_LICENSE_DB_PATH, else
// ~/.caio/caio_licenses.db.
func (e Env) DB(flag string) (DB, error) {
	if flag != "" {
		return e.namedDB(flag, "--db")
	}
	if p := e(EnvDBPath); p != "" {
		return e.namedDB(p, EnvDBPath)
	}
	home, err := e.Home()
	if err != nil {
		return DB{}, licensing.Errorf(licensing.CodeConfig, "cannot find the home directory for the default database: set CAIO_LICENSE_DB_PATH")
	}
	return DB{Path: filepath.Join(home, ".caio", "caio_licenses.db")}, nil
}

// namedDB is the database the operator named with source. A path that
// starts like an S3 location and is not one (s3:/x, S3://x) is refused:
// taken for a local path, it would be created there by init-db, and the
// operator would believe the database is in S3.
func (e Env) namedDB(p, source string) (DB, error) {
	if strings.HasPrefix(strings.ToLower(p), "s3:") && !strings.HasPrefix(p, "s3://") {
		return DB{}, licensing.Errorf(licensing.CodeBadRequest, "%s %q is neither a local path nor an S3 location: write s3://BUCKET/PATH/caio_licenses.db (lower case, two slashes)", source, p)
	}
	p, err := e.expandHome(p, source)
	return DB{Path: p, Source: source}, err
}

// expandHome expands a leading ~ the way a shell would have: a path
// quoted in a file or a unit (CAIO_LICENSE_DB_PATH="~/x.db") reaches us
// unexpanded, and would otherwise become a directory named "~". Another
// user's ~name is refused: we do not look up accounts.
func (e Env) expandHome(p, source string) (string, error) {
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
	home, err := e.Home()
	if err != nil {
		return "", licensing.Errorf(code, "%s %q starts with ~ but there is no home directory (HOME): write the full path", source, p)
	}
	return filepath.Join(home, p[1:]), nil
}

// Hint is what to do about a database that is missing or is not one,
// naming what the operator used to point at it.
func (db DB) Hint(missing bool) string {
	switch {
	case db.Source == "--db" && missing:
		// Unquoted around the command, so that a quoted path stays one
		// that pastes into a shell as it is.
		return "check --db, or create it with: manage-licenses init-db --db " + ShellQuote(db.Path)
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

// ShellQuote quotes s for a POSIX shell when it needs it, so that a
// printed command runs as printed.
func ShellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@%,", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CacheDir is where an S3 database's working copies are kept:
// CAIO_LICENSE_CACHE_DIR, else the user's cache directory as
// os.UserCacheDir finds it on Linux (XDG_CACHE_HOME, else ~/.cache) read
// from this environment, else, with no home (a Lambda function), a
// directory per user id in the temporary directory (which the store
// refuses if another user took the name first).
func (e Env) CacheDir() string {
	if dir := e(EnvCacheDir); dir != "" {
		return dir
	}
	if dir := e("XDG_CACHE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "caio-licensing")
	}
	if home := e("HOME"); home != "" {
		return filepath.Join(home, ".cache", "caio-licensing")
	}
	tmp := e("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, fmt.Sprintf("caio-licensing-%d", os.Getuid()))
}

// PublicKeys reads CAIO_LICENSE_PUBLIC_KEY; nil when it is unset.
func (e Env) PublicKeys() (licensekey.PublicKeys, error) {
	v := e(EnvPublicKey)
	if v == "" {
		return nil, nil
	}
	keys, err := licensekey.ParsePublicKeys(v)
	if err != nil {
		return nil, licensing.Errorf(licensing.CodeConfig, "CAIO_LICENSE_PUBLIC_KEY: %v", err)
	}
	return keys, nil
}

// Secret is where the signing secret is: its value (CAIO_LICENSE_SECRET),
// else the Secrets Manager secret holding it (CAIO_LICENSE_SECRET_ARN);
// both empty when neither is set.
func (e Env) Secret() (value, arn string) { return e(EnvSecret), e(EnvSecretARN) }

// ServerKey is where the API's server key is: its value (CAIO_SERVER_KEY),
// else the Secrets Manager secret holding it (CAIO_SERVER_KEY_ARN).
func (e Env) ServerKey() (value, arn string) { return e(EnvServerKey), e(EnvServerKeyARN) }

// DefaultServerKeyFile is where serve keeps the server key it certified
// itself (make run): ~/.caio/server_key ("" without a home).
func (e Env) DefaultServerKeyFile() string {
	home, err := e.Home()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".caio", "server_key")
}
