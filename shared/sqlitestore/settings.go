package sqlitestore

import (
	"database/sql"
	"errors"
)

// Setting implements licensing.Tx.
func (t *Tx) Setting(name string) ([]byte, error) {
	var v []byte
	err := t.queryRow("SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// PutSetting implements licensing.Tx.
func (t *Tx) PutSetting(name string, value []byte) error {
	return t.exec("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", name, value)
}
