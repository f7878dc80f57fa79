package sqlitestore

import "github.com/caio-licensing/caio-licensing/shared/licensing"

// SigningKeys implements licensing.Tx.
func (t *Tx) SigningKeys() ([]licensing.SigningKey, error) {
	rows, err := t.query("SELECT key_id, public_key, sealed_private_key, created_at FROM signing_keys ORDER BY created_at, rowid")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []licensing.SigningKey
	for rows.Next() {
		var k licensing.SigningKey
		var created string
		if err := rows.Scan(&k.KeyID, &k.PublicKey, &k.SealedPrivateKey, &created); err != nil {
			return nil, err
		}
		k.CreatedAt = parseTS(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

// InsertSigningKey implements licensing.Tx.
func (t *Tx) InsertSigningKey(k licensing.SigningKey) error {
	return t.exec("INSERT INTO signing_keys (key_id, public_key, sealed_private_key, created_at) VALUES (?, ?, ?, ?)",
		k.KeyID, k.PublicKey, k.SealedPrivateKey, ts(k.CreatedAt))
}

// ResealSigningKey implements licensing.Tx.
func (t *Tx) ResealSigningKey(keyID string, sealed []byte) error {
	return t.exec("UPDATE signing_keys SET sealed_private_key = ? WHERE key_id = ?", sealed, keyID)
}

// InsertServerCertificate implements licensing.Tx.
func (t *Tx) InsertServerCertificate(c licensing.ServerCertificate) error {
	return t.exec(`INSERT INTO server_certificates (key_id, public_key, certificate, not_before, not_after, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.KeyID, c.PublicKey, c.Certificate, ts(c.NotBefore), ts(c.NotAfter), ts(c.CreatedAt))
}

// DeleteServerCertificates implements licensing.Tx.
func (t *Tx) DeleteServerCertificates(keyID string) error {
	return t.exec("DELETE FROM server_certificates WHERE key_id = ?", keyID)
}

// ServerCertificates implements licensing.Tx.
func (t *Tx) ServerCertificates() ([]licensing.ServerCertificate, error) {
	return queryAll(t, `SELECT key_id, public_key, certificate, not_before, not_after, created_at
		FROM server_certificates ORDER BY created_at, rowid`, nil, func(sc interface{ Scan(...any) error }) (licensing.ServerCertificate, error) {
		var c licensing.ServerCertificate
		var nb, na, created string
		err := sc.Scan(&c.KeyID, &c.PublicKey, &c.Certificate, &nb, &na, &created)
		c.NotBefore, c.NotAfter, c.CreatedAt = parseTS(nb), parseTS(na), parseTS(created)
		return c, err
	})
}
