package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// schemaObject is one row of sqlite_schema.
type schemaObject struct {
	kind, name, sql string
}

func (o schemaObject) key() string { return o.kind + " " + o.name }

//go:generate go test -count=1 -run ^TestGeneratedSchemaIsTheMigrations$ . -args -write-schema

// expectedObjects returns the schema objects that migrations up to version
// make: the expected schema is exactly what this build would have created,
// text for text. The current version's are generated at build time
// (schema_generated.go, by replaying the migrations: go generate), so that
// opening a database replays nothing; TestGeneratedSchemaIsTheMigrations
// replays them and fails when the two differ. An older version (init-db
// migrating a database forward) is replayed here.
func expectedObjects(ctx context.Context, version int) (map[string]schemaObject, error) {
	if version == SchemaVersion && generatedVersion == SchemaVersion {
		out := make(map[string]schemaObject, len(generatedObjects))
		for _, o := range generatedObjects {
			out[o.key()] = o
		}
		return out, nil
	}
	if v, ok := replayed.Load(version); ok {
		return v.(map[string]schemaObject), nil
	}
	objs, err := replayObjects(ctx, version)
	if err != nil {
		return nil, err
	}
	replayed.Store(version, objs)
	return objs, nil
}

var replayed sync.Map // schema version → map[key]schemaObject

// replayObjects runs the migrations up to version on an empty in-memory
// database and lists what they made.
func replayObjects(ctx context.Context, version int) (map[string]schemaObject, error) {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	for _, m := range migrations[:version] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			return nil, fmt.Errorf("replaying the migrations: %w", err)
		}
	}
	return listObjects(ctx, db)
}

func listObjects(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (map[string]schemaObject, error) {
	rows, err := db.QueryContext(ctx, "SELECT type, name, coalesce(sql, '') FROM sqlite_schema")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]schemaObject{}
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.kind, &o.name, &o.sql); err != nil {
			return nil, err
		}
		out[o.key()] = o
	}
	return out, rows.Err()
}

// checkObjects refuses a database whose tables, indexes, triggers or views
// differ from what its schema version defines: an extra trigger, a dropped
// one, or one whose text was changed.
func (s *Store) checkObjects(ctx context.Context, version int) error {
	tampered := func(problem string) error {
		te := &TamperedError{Problem: problem, Version: version}
		return licensing.Wrap(licensing.CodeDBInvalid, te, "%s", te.Describe(s.path))
	}
	if version < 0 {
		return tampered("has a schema version no build makes")
	}
	want, err := expectedObjects(ctx, version)
	if err != nil {
		return licensing.Wrap(licensing.CodeInternal, err, "cannot build the expected schema")
	}
	got, err := listObjects(ctx, s.db)
	if err != nil {
		return s.mapOpenError(err)
	}
	for k, o := range got {
		// ANALYZE's statistics tables hold no logic.
		if strings.HasPrefix(o.name, "sqlite_stat") && o.kind == "table" {
			continue
		}
		w, ok := want[k]
		switch {
		case !ok:
			return tampered(fmt.Sprintf("has an unknown %s %q", o.kind, o.name))
		case w.sql != o.sql:
			return tampered(fmt.Sprintf("has a modified %s %q", o.kind, o.name))
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			return tampered(fmt.Sprintf("is missing its %s %q", w.kind, w.name))
		}
	}
	return nil
}

// TamperedError is the cause of the error refusing a database whose schema
// objects differ from its version's: a type, not only a message, so that a
// caller that knows the database by another name (the S3 store, whose file
// is a working copy) can say the same of that name.
type TamperedError struct {
	Problem string // e.g. `has an unknown trigger "keep_active"`
	Version int    // the schema version the file claims
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("database %s (schema version %d)", e.Problem, e.Version)
}

// Describe is the message, naming the database as where.
func (e *TamperedError) Describe(where string) string {
	return fmt.Sprintf("database %s %s (schema version %d): it was changed outside manage-licenses; restore it from a backup", where, e.Problem, e.Version)
}
