package sqlitestore

// applicationID marks a CAIO license database ("CAIO") in the SQLite header.
const applicationID = 0x4341494F

// migrations[i] takes the schema from version i to i+1 (PRAGMA user_version).
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
-- Per-database salt for the secret-derived sealing key.
INSERT INTO settings (name, value) VALUES ('kdf_salt', randomblob(16));

CREATE TABLE signing_keys (
	key_id             TEXT PRIMARY KEY,
	public_key         BLOB NOT NULL,
	sealed_private_key BLOB NOT NULL,
	created_at         TEXT NOT NULL
) STRICT;

CREATE TABLE customers (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE licenses (
	id                   TEXT PRIMARY KEY,
	customer_id          TEXT NOT NULL REFERENCES customers(id),
	tier                 TEXT NOT NULL,
	features             TEXT NOT NULL, -- JSON array
	max_instances        INTEGER NOT NULL CHECK (max_instances > 0),
	max_services         INTEGER NOT NULL CHECK (max_services > 0),
	max_requests_per_day INTEGER NOT NULL CHECK (max_requests_per_day > 0),
	issued_at            TEXT NOT NULL,
	expires_at           TEXT NOT NULL,
	status               TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
	recipient            TEXT NOT NULL DEFAULT '',
	key_id               TEXT NOT NULL REFERENCES signing_keys(key_id),
	created_at           TEXT NOT NULL,
	updated_at           TEXT NOT NULL
) STRICT;
CREATE INDEX licenses_customer ON licenses (customer_id);
CREATE INDEX licenses_expires ON licenses (expires_at);

-- Keys are never stored in plaintext: a digest to look them up, and a copy
-- sealed under the secret-derived key for export.
CREATE TABLE license_keys (
	digest     TEXT PRIMARY KEY,
	license_id TEXT NOT NULL REFERENCES licenses(id),
	sealed_key BLOB NOT NULL,
	issued_at  TEXT NOT NULL,
	expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX license_keys_license ON license_keys (license_id, issued_at);

CREATE TABLE activations (
	license_id     TEXT NOT NULL REFERENCES licenses(id),
	instance_id    TEXT NOT NULL,
	ip_address     TEXT NOT NULL DEFAULT '',
	first_seen     TEXT NOT NULL,
	last_seen      TEXT NOT NULL,
	deactivated_at TEXT,
	PRIMARY KEY (license_id, instance_id)
) STRICT;
CREATE INDEX activations_active ON activations (license_id) WHERE deactivated_at IS NULL;

CREATE TABLE events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          TEXT NOT NULL,
	kind        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	customer_id TEXT NOT NULL DEFAULT '',
	license_id  TEXT NOT NULL DEFAULT '',
	instance_id TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX events_license ON events (license_id, id);
CREATE INDEX events_at ON events (at);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
	BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
	BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
`,
	// 2: ids of the writes applied, so that a writer whose acknowledgement
	// was lost (S3 mode) can tell whether its write landed.
	`
CREATE TABLE operations (
	id         TEXT PRIMARY KEY,
	applied_at TEXT NOT NULL
) STRICT;
CREATE INDEX operations_applied ON operations (applied_at);
`,
	// 3: email deliveries, and reminder claims (at most one reminder per
	// license, threshold and expiry).
	`
CREATE TABLE deliveries (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	license_id     TEXT NOT NULL REFERENCES licenses(id),
	kind           TEXT NOT NULL CHECK (kind IN ('license', 'reminder')),
	threshold_days INTEGER NOT NULL DEFAULT 0,
	recipient      TEXT NOT NULL,
	provider       TEXT NOT NULL,
	message_id     TEXT NOT NULL DEFAULT '',
	at             TEXT NOT NULL,
	outcome        TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'skipped')),
	error          TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX deliveries_license ON deliveries (license_id, id);

CREATE TABLE reminder_claims (
	license_id     TEXT NOT NULL REFERENCES licenses(id),
	threshold_days INTEGER NOT NULL,
	expires_at     TEXT NOT NULL,
	claimed_at     TEXT NOT NULL,
	state          TEXT NOT NULL CHECK (state IN ('claimed', 'sent')),
	PRIMARY KEY (license_id, threshold_days, expires_at)
) STRICT;
`,
	// 4: seats as leases (an activation holds its seat until its lease
	// expires; existing seats get a lease from their last sighting), the
	// lease length of each license, offline activations, and the
	// certificates of server keys.
	`
ALTER TABLE licenses ADD COLUMN lease_seconds INTEGER NOT NULL DEFAULT 259200 CHECK (lease_seconds >= 60);
ALTER TABLE activations ADD COLUMN kind TEXT NOT NULL DEFAULT 'online' CHECK (kind IN ('online', 'offline'));
ALTER TABLE activations ADD COLUMN lease_issued_at TEXT;
ALTER TABLE activations ADD COLUMN lease_expires_at TEXT;
UPDATE activations SET lease_issued_at = last_seen,
	lease_expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', last_seen, '+259200 seconds')
	WHERE deactivated_at IS NULL;

CREATE TABLE server_certificates (
	key_id      TEXT PRIMARY KEY,
	public_key  BLOB NOT NULL,
	certificate TEXT NOT NULL,
	not_before  TEXT NOT NULL,
	not_after   TEXT NOT NULL,
	created_at  TEXT NOT NULL
) STRICT;
`,
	// 5: the churn limit: seats granted per license in the last 24 hours
	// (rows older than that are pruned as new ones are added), and a
	// per-license limit (0: the default, max(10, 2 x max instances)).
	`
ALTER TABLE licenses ADD COLUMN max_activations_per_day INTEGER NOT NULL DEFAULT 0 CHECK (max_activations_per_day >= 0);
CREATE TABLE seat_grants (
	license_id TEXT NOT NULL REFERENCES licenses(id),
	at         TEXT NOT NULL
) STRICT;
CREATE INDEX seat_grants_license ON seat_grants (license_id, at);
`,
	// 6: archives. History older than the retention moves to archive files;
	// a row of the append-only tables may be deleted only when an archive
	// recorded here covers it (its id range, older than its cutoff).
	`
CREATE TABLE archives (
	name       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('events', 'deliveries', 'reminder_claims')),
	first_id   INTEGER NOT NULL,
	last_id    INTEGER NOT NULL,
	cutoff     TEXT NOT NULL,
	count      INTEGER NOT NULL,
	first_at   TEXT NOT NULL,
	last_at    TEXT NOT NULL,
	created_at TEXT NOT NULL
) STRICT;
CREATE INDEX archives_kind ON archives (kind, last_at);
CREATE TRIGGER archives_no_update BEFORE UPDATE ON archives
	BEGIN SELECT RAISE(ABORT, 'archive records are append-only'); END;
CREATE TRIGGER archives_no_delete BEFORE DELETE ON archives
	BEGIN SELECT RAISE(ABORT, 'archive records are append-only'); END;
DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
	WHEN NOT EXISTS (SELECT 1 FROM archives a WHERE a.kind = 'events'
		AND OLD.id BETWEEN a.first_id AND a.last_id AND OLD.at < a.cutoff)
	BEGIN SELECT RAISE(ABORT, 'the event log is append-only: only archived events may be deleted'); END;
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
	WHEN NOT EXISTS (SELECT 1 FROM archives a WHERE a.kind = 'deliveries'
		AND OLD.id BETWEEN a.first_id AND a.last_id AND OLD.at < a.cutoff)
	BEGIN SELECT RAISE(ABORT, 'deliveries are kept until archived'); END;
`,
	// 7: refusals per day and code, for the operator report (counted in
	// memory, recorded with a write that happens anyway); live seats counted
	// from the index alone (every activation counts a license's seats).
	`
DROP INDEX activations_active;
CREATE INDEX activations_live ON activations (license_id, lease_expires_at) WHERE deactivated_at IS NULL;
CREATE TABLE refusal_counts (
	day   TEXT NOT NULL,
	code  TEXT NOT NULL,
	count INTEGER NOT NULL CHECK (count > 0),
	PRIMARY KEY (day, code)
) STRICT, WITHOUT ROWID;
`,
	// 8: seat timeouts: an online seat whose holder has not renewed its
	// lease for the license's seat timeout is free, though the lease still
	// runs (0: the lease length, as before). The live seats' index also
	// holds the issue time and the kind, which decide whether a seat timed
	// out, and deactivated_at (NULL in every entry), so that counting the
	// seats taken reads the index alone.
	`
ALTER TABLE licenses ADD COLUMN seat_timeout_seconds INTEGER NOT NULL DEFAULT 0
	CHECK (seat_timeout_seconds = 0 OR seat_timeout_seconds BETWEEN 60 AND lease_seconds);
DROP INDEX activations_live;
CREATE INDEX activations_live ON activations (license_id, lease_expires_at, lease_issued_at, kind, deactivated_at)
	WHERE deactivated_at IS NULL;
`,
	// 9: archived seats. Maintain moves the seats that ended (deactivated,
	// or their lease ran out) before its cutoff to archive files too, as
	// it does events and deliveries: archives gains the kind activations.
	// SQLite cannot change a CHECK in place: the table is rebuilt with its
	// rows, and the triggers that read it are made again as they were.
	`
CREATE TABLE archives_v9 (
	name       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('events', 'deliveries', 'reminder_claims', 'activations')),
	first_id   INTEGER NOT NULL,
	last_id    INTEGER NOT NULL,
	cutoff     TEXT NOT NULL,
	count      INTEGER NOT NULL,
	first_at   TEXT NOT NULL,
	last_at    TEXT NOT NULL,
	created_at TEXT NOT NULL
) STRICT;
INSERT INTO archives_v9 (name, kind, first_id, last_id, cutoff, count, first_at, last_at, created_at)
	SELECT name, kind, first_id, last_id, cutoff, count, first_at, last_at, created_at FROM archives ORDER BY rowid;
DROP TRIGGER events_no_delete;
DROP TRIGGER deliveries_no_delete;
DROP TABLE archives;
ALTER TABLE archives_v9 RENAME TO archives;
CREATE INDEX archives_kind ON archives (kind, last_at);
CREATE TRIGGER archives_no_update BEFORE UPDATE ON archives
	BEGIN SELECT RAISE(ABORT, 'archive records are append-only'); END;
CREATE TRIGGER archives_no_delete BEFORE DELETE ON archives
	BEGIN SELECT RAISE(ABORT, 'archive records are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
	WHEN NOT EXISTS (SELECT 1 FROM archives a WHERE a.kind = 'events'
		AND OLD.id BETWEEN a.first_id AND a.last_id AND OLD.at < a.cutoff)
	BEGIN SELECT RAISE(ABORT, 'the event log is append-only: only archived events may be deleted'); END;
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
	WHEN NOT EXISTS (SELECT 1 FROM archives a WHERE a.kind = 'deliveries'
		AND OLD.id BETWEEN a.first_id AND a.last_id AND OLD.at < a.cutoff)
	BEGIN SELECT RAISE(ABORT, 'deliveries are kept until archived'); END;
`,
	// 10: grace and overage. A license may keep working for grace_days
	// after it expires, and hold up to overage_percent more seats than
	// max_instances; an activation says whether its seat is one of those
	// above max_instances (overage), so that its holder is told so each
	// time its lease is renewed. 0 everywhere is today's behaviour.
	`
ALTER TABLE licenses ADD COLUMN grace_days INTEGER NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 90);
ALTER TABLE licenses ADD COLUMN overage_percent INTEGER NOT NULL DEFAULT 0 CHECK (overage_percent BETWEEN 0 AND 100);
ALTER TABLE activations ADD COLUMN overage INTEGER NOT NULL DEFAULT 0 CHECK (overage IN (0, 1));
`,
	// 11: the seats given back by their instance but taken until their
	// lease ends (releasing) are counted from an index too. Every first
	// activation counts them (ActiveInstances); without it that count read
	// every activation row of the license, its cost growing with the seats
	// the license ever had. Only given-back rows are in it, so a renewal
	// (deactivated_at NULL before and after) never writes to it.
	`
CREATE INDEX activations_releasing ON activations (license_id, deactivated_at, lease_expires_at, lease_issued_at, kind)
	WHERE deactivated_at IS NOT NULL;
`,
}

// SchemaVersion is the schema this build reads and writes.
var SchemaVersion = len(migrations)
