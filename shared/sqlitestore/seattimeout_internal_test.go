package sqlitestore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A database from before seat timeouts (schema 7) migrates with every
// license at the lease (0), and the database refuses a timeout outside a
// minute to the lease.
func TestMigrationAddsSeatTimeouts(t *testing.T) {
	path := oldDatabase(t, 7,
		`INSERT INTO signing_keys VALUES ('k', x'00', x'00', '2026-01-01T00:00:00Z')`,
		`INSERT INTO customers VALUES ('C', 'C', '', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
		`INSERT INTO licenses (id, customer_id, tier, features, max_instances, max_services, max_requests_per_day, issued_at, expires_at, status, key_id, created_at, updated_at, lease_seconds)
			VALUES ('L', 'C', 't', '[]', 2, 1, 1, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'active', 'k', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 3600)`,
	)
	ctx := context.Background()
	st, err := Open(ctx, path, Options{SkipSchemaCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if from, err := st.Migrate(ctx); err != nil || from != 7 {
		t.Fatalf("migrate: from %d, %v", from, err)
	}
	var timeout int64
	if err := st.db.QueryRow("SELECT seat_timeout_seconds FROM licenses WHERE id = 'L'").Scan(&timeout); err != nil || timeout != 0 {
		t.Fatalf("seat timeout %d after migration, %v", timeout, err)
	}
	for _, v := range []int64{59, 3601, -1} {
		if _, err := st.db.Exec("UPDATE licenses SET seat_timeout_seconds = ? WHERE id = 'L'", v); err == nil || !strings.Contains(err.Error(), "CHECK") {
			t.Errorf("seat timeout %d s on a 1-hour lease: %v", v, err)
		}
	}
	for _, v := range []int64{60, 3600, 0} {
		if _, err := st.db.Exec("UPDATE licenses SET seat_timeout_seconds = ? WHERE id = 'L'", v); err != nil {
			t.Errorf("seat timeout %d s on a 1-hour lease: %v", v, err)
		}
	}
}

// Counting the seats taken, on every activation that takes one, reads
// covering indexes alone, with or without a seat timeout: the live seats'
// for the seats not given back, the releasing seats' for those given back
// (never every activation of the license, row by row).
func TestActiveInstancesIsIndexed(t *testing.T) {
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "l.db"), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, q := range map[string][]any{
		"seat timeout":    {activeInstancesQuery, "L", "2026-01-01T00:00:00Z", "2025-12-31T23:30:00Z"},
		"no seat timeout": {activeInstancesNoTimeoutQuery, "L", "2026-01-01T00:00:00Z"},
	} {
		rows, err := st.db.Query("EXPLAIN QUERY PLAN "+q[0].(string), q[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		for _, want := range []string{"USING COVERING INDEX activations_live (license_id=? AND lease_expires_at>?)",
			"USING COVERING INDEX activations_releasing (license_id=? AND deactivated_at>?)"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the seats are not counted %s:\n%s", name, want, text)
			}
		}
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN activations") || strings.Contains(p, "sqlite_autoindex_activations") {
				t.Errorf("%s: every activation of the license read:\n%s", name, text)
			}
		}
	}
}
