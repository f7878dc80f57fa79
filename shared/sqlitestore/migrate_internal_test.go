package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// A database from before leases (schema 3) migrates with every license at
// the default lease and every active seat leased from its last sighting.
func TestMigrationGivesExistingSeatsLeases(t *testing.T) {
	path := oldDatabase(t, 3,
		`INSERT INTO signing_keys VALUES ('k', x'00', x'00', '2026-01-01T00:00:00Z')`,
		`INSERT INTO customers VALUES ('C', 'C', '', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
		`INSERT INTO licenses (id, customer_id, tier, features, max_instances, max_services, max_requests_per_day, issued_at, expires_at, status, key_id, created_at, updated_at)
			VALUES ('L', 'C', 't', '[]', 2, 1, 1, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'active', 'k', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
		`INSERT INTO activations (license_id, instance_id, first_seen, last_seen) VALUES ('L', 'live', '2026-02-01T00:00:00Z', '2026-02-03T10:00:00Z')`,
		`INSERT INTO activations (license_id, instance_id, first_seen, last_seen, deactivated_at) VALUES ('L', 'gone', '2026-02-01T00:00:00Z', '2026-02-02T00:00:00Z', '2026-02-02T00:00:00Z')`,
	)
	ctx := context.Background()
	st, err := Open(ctx, path, Options{SkipSchemaCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if from, err := st.Migrate(ctx); err != nil || from != 3 {
		t.Fatalf("migrate: from %d, %v", from, err)
	}
	var lease int64
	var liveUntil, goneUntil sql.NullString
	st.db.QueryRow("SELECT lease_seconds FROM licenses WHERE id = 'L'").Scan(&lease)
	st.db.QueryRow("SELECT lease_expires_at FROM activations WHERE instance_id = 'live'").Scan(&liveUntil)
	st.db.QueryRow("SELECT lease_expires_at FROM activations WHERE instance_id = 'gone'").Scan(&goneUntil)
	if lease != 259200 || liveUntil.String != "2026-02-06T10:00:00Z" || goneUntil.Valid {
		t.Fatalf("lease %d s; live seat until %v; deactivated seat until %v", lease, liveUntil, goneUntil)
	}
}

// A database from before archived seats (schema 7) keeps its archive
// records through the rebuild of their table, and the triggers that guard
// the event log and the records still hold; the kind activations is new.
func TestMigrationKeepsArchiveRecordsAndTheirGuards(t *testing.T) {
	path := oldDatabase(t, 7,
		`INSERT INTO events (at, kind, actor) VALUES ('2026-01-01T00:00:00Z', 'customer.created', 't'), ('2026-01-02T00:00:00Z', 'customer.created', 't'),
			('2026-03-01T00:00:00Z', 'customer.created', 't')`,
		`INSERT INTO archives VALUES ('events-000000000001-000000000002.jsonl.gz', 'events', 1, 2, '2026-02-01T00:00:00Z', 2,
			'2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '2026-02-01T00:00:00Z')`,
	)
	ctx := context.Background()
	st, err := Open(ctx, path, Options{SkipSchemaCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if from, err := st.Migrate(ctx); err != nil || from != 7 {
		t.Fatalf("migrate: from %d, %v", from, err)
	}
	st.Close()
	st, err = Open(ctx, path, Options{}) // the schema check passes
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var name string
	var n int
	if err := st.db.QueryRow("SELECT name, count(*) FROM archives").Scan(&name, &n); err != nil || n != 1 || name != "events-000000000001-000000000002.jsonl.gz" {
		t.Fatalf("archive records after the migration: %d (%s), %v", n, name, err)
	}
	for _, c := range []struct {
		stmt string
		ok   bool
	}{
		{"DELETE FROM events WHERE id = 1", true},                      // covered by the record
		{"DELETE FROM events WHERE id = 3", false},                     // not covered
		{"UPDATE archives SET cutoff = '2027-01-01T00:00:00Z'", false}, // records are append-only
		{"DELETE FROM archives", false},
		{`INSERT INTO archives VALUES ('activations-1-x.jsonl.gz', 'activations', 0, 0, '2026-02-01T00:00:00Z', 1,
			'2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '2026-02-01T00:00:00Z')`, true},
		{`INSERT INTO archives VALUES ('x', 'seats', 0, 0, '', 1, '', '', '')`, false},
	} {
		if _, err := st.db.Exec(c.stmt); (err == nil) != c.ok {
			t.Errorf("%.50s: %v, want ok=%v", c.stmt, err, c.ok)
		}
	}
}

// oldDatabase is a database file as schema version made it (its
// migrations and marks), holding rows.
func oldDatabase(t *testing.T, version int, rows ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", version))
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := append(append([]string{}, migrations[:version]...),
		fmt.Sprintf("PRAGMA application_id = %d", applicationID), fmt.Sprintf("PRAGMA user_version = %d", version))
	for _, s := range append(stmts, rows...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%.60s: %v", s, err)
		}
	}
	return path
}
