package sqlitestore

import (
	"database/sql"
	"errors"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// InsertCustomer implements licensing.Tx.
func (t *Tx) InsertCustomer(c licensing.Customer) error {
	return t.exec("INSERT INTO customers (id, name, email, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
		c.ID, c.Name, c.Email, ts(c.CreatedAt), ts(c.UpdatedAt))
}

const customerColumns = "id, name, email, created_at, updated_at"

func scanCustomer(sc interface{ Scan(...any) error }) (licensing.Customer, error) {
	var c licensing.Customer
	var created, updated string
	err := sc.Scan(&c.ID, &c.Name, &c.Email, &created, &updated)
	c.CreatedAt, c.UpdatedAt = parseTS(created), parseTS(updated)
	return c, err
}

// Customer implements licensing.Tx.
func (t *Tx) Customer(id string) (licensing.Customer, error) {
	c, err := scanCustomer(t.queryRow("SELECT "+customerColumns+" FROM customers WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound("customer " + id)
	}
	return c, err
}

// UpdateCustomer implements licensing.Tx.
func (t *Tx) UpdateCustomer(c licensing.Customer) error {
	return t.exec("UPDATE customers SET name = ?, email = ?, updated_at = ? WHERE id = ?", c.Name, c.Email, ts(c.UpdatedAt), c.ID)
}

// Customers implements licensing.Tx.
func (t *Tx) Customers() ([]licensing.Customer, error) {
	return queryAll(t, "SELECT "+customerColumns+" FROM customers ORDER BY id", nil, scanCustomer)
}
