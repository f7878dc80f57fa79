package sqlitestore

import (
	"strings"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// AppendEvent implements licensing.Tx.
func (t *Tx) AppendEvent(e licensing.Event) error {
	return t.fastExec("INSERT INTO events (at, kind, actor, customer_id, license_id, instance_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
		ts(e.At), e.Kind, e.Actor, e.CustomerID, e.LicenseID, e.InstanceID, e.Detail)
}

// Events implements licensing.Tx.
func (t *Tx) Events(f licensing.EventFilter) ([]licensing.Event, error) {
	var where []string
	var args []any
	if f.LicenseID != "" {
		where, args = append(where, "license_id = ?"), append(args, f.LicenseID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, ts(f.Since))
	}
	q := "SELECT " + eventColumns + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return queryAll(t, q+" ORDER BY id", args, scanEvent)
}

const eventColumns = "id, at, kind, actor, customer_id, license_id, instance_id, detail"

func scanEvent(sc interface{ Scan(...any) error }) (licensing.Event, error) {
	var e licensing.Event
	var at string
	err := sc.Scan(&e.ID, &at, &e.Kind, &e.Actor, &e.CustomerID, &e.LicenseID, &e.InstanceID, &e.Detail)
	e.At = parseTS(at)
	return e, err
}
