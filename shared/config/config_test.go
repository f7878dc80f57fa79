package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Settings come from the environment given, not the process's: a command
// run in-process with a test's environment sees that one alone.
func TestSettingsComeFromTheEnvironmentGiven(t *testing.T) {
	t.Setenv("HOME", "/the/process/home")
	t.Setenv("CAIO_LICENSE_DB_PATH", "/the/process/db")
	env := config.Map(map[string]string{"HOME": "/home/op"})
	db, err := env.DB("")
	if err != nil || db.Path != "/home/op/.caio/caio_licenses.db" || db.Explicit() {
		t.Fatalf("default database: %+v, %v", db, err)
	}
	if db, _ := env.DB("~/x.db"); db.Path != "/home/op/x.db" || db.Source != "--db" {
		t.Fatalf("--db ~/x.db: %+v", db)
	}
	if _, err := env.DB("~other/x.db"); licensing.ErrorCode(err) != licensing.CodeBadRequest {
		t.Fatalf("--db ~other/x.db: %v", err)
	}
	// Mistyped S3 locations are refused, not taken for local paths.
	for _, p := range []string{"s3:/licenses/x.db", "S3://licenses/x.db", "s3:licenses/x.db", "S3:"} {
		if _, err := env.DB(p); licensing.ErrorCode(err) != licensing.CodeBadRequest || !strings.Contains(err.Error(), "s3://BUCKET/") {
			t.Errorf("--db %s: %v", p, err)
		}
	}
	if db, err := config.Map(map[string]string{"CAIO_LICENSE_DB_PATH": "s3://licenses/x.db"}).DB(""); err != nil || !db.InS3() {
		t.Fatalf("s3://licenses/x.db: %+v, %v", db, err)
	}
	if db, err := env.DB("s3x/local.db"); err != nil || db.InS3() {
		t.Fatalf("a local path that starts with s3: %+v, %v", db, err)
	}
	if _, err := config.Map(nil).DB(""); licensing.ErrorCode(err) != licensing.CodeConfig {
		t.Fatalf("no HOME: %v", err)
	}
}

func TestCacheDir(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CAIO_LICENSE_CACHE_DIR": "/c", "HOME": "/h"}, "/c"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/caio-licensing"},
		{map[string]string{"XDG_CACHE_HOME": "relative", "HOME": "/h"}, "/h/.cache/caio-licensing"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/caio-licensing"},
		{map[string]string{"TMPDIR": "/t"}, fmt.Sprintf("/t/caio-licensing-%d", os.Getuid())},
		{nil, fmt.Sprintf("/tmp/caio-licensing-%d", os.Getuid())},
	} {
		if got := config.Map(c.env).CacheDir(); got != c.want {
			t.Errorf("%v: %s, want %s", c.env, got, c.want)
		}
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	for name, v := range map[string]string{"CAIO_REMINDER_DAYS": "30,x", "CAIO_S3_HISTORY_DAYS": "1", "CAIO_SMTP_PORT": "smtp", "CAIO_EMAIL_PROVIDER": "pigeon"} {
		env := config.Map(map[string]string{name: v, "CAIO_SMTP_SERVER": "mail.example", "CAIO_SMTP_SENDER": "a@example.test"})
		var err error
		switch name {
		case "CAIO_REMINDER_DAYS":
			_, err = env.ReminderDays()
		case "CAIO_S3_HISTORY_DAYS":
			_, err = env.HistoryDays()
		default:
			_, err = env.Mail()
		}
		if licensing.ErrorCode(err) != licensing.CodeConfig || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want CONFIG naming it", name, v, err)
		}
	}
}
