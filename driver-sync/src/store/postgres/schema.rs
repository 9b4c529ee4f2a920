//! The PostgreSQL store's schema: its tables, its version and its migrations.
//!
//! A store lives in one PostgreSQL *schema* (namespace) of a database, so several stores (one
//! per node, or one per test) can share a database. The tables are the SQLite store's, with
//! PostgreSQL types (`BIGINT` for integers, `BYTEA` for blobs) plus the lease of `lease.rs`:
//!
//! - `meta(name, value)`: `magic` = `contractcourt-store` and `schema_version`. Frozen shape,
//!   as in SQLite: every version can read another's number.
//! - `records`, `log`, `events`, `step_digests`, `recorder_start`: as in `sqlite.rs`, each row
//!   with the same checksum (`checksum.rs`); from version 2 the index `records_path` on
//!   `records(path COLLATE "C")`, for `Store::load_channel`.
//! - `lease(id, token, holder, expires_at)`: the one row of the owner's lease.
//!
//! Migrations run in one transaction under a transaction-scoped advisory lock keyed by the
//! schema's name, so two processes opening a new store at once do not both create it.

use postgres::GenericClient;

use super::{pg, quoted};
use crate::store::StoreError;

/// The schema version this code writes; older stores are migrated to it at open, newer ones are
/// refused ([`StoreError::FutureVersion`]).
pub const PG_SCHEMA_VERSION: u32 = 2;

/// The `meta` table's `magic` value (the SQLite store's).
const MAGIC: &str = "contractcourt-store";

/// One step of the schema, from `version - 1` to `version`.
#[derive(Clone)]
pub(super) struct Migration {
    pub(super) version: u32,
    pub(super) sql: &'static str,
}

/// Every migration, in order: `MIGRATIONS[i].version == i + 1`, the last is
/// [`PG_SCHEMA_VERSION`]. Each runs with the store's schema first on the `search_path`.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
        CREATE TABLE meta (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE records (
            key      TEXT PRIMARY KEY,
            path     TEXT NOT NULL,
            version  BIGINT NOT NULL,
            body     TEXT NOT NULL,
            checksum BYTEA NOT NULL
        );
        CREATE TABLE log (
            channel  BYTEA NOT NULL,
            seq      BIGINT NOT NULL,
            version  BIGINT NOT NULL,
            body     TEXT NOT NULL,
            checksum BYTEA NOT NULL,
            PRIMARY KEY (channel, seq)
        );
        CREATE TABLE events (
            seq      BIGINT PRIMARY KEY,
            event    TEXT NOT NULL,
            checksum BYTEA NOT NULL
        );
        CREATE TABLE step_digests (
            seq      BIGINT PRIMARY KEY,
            digest   BYTEA NOT NULL,
            checksum BYTEA NOT NULL
        );
        CREATE TABLE recorder_start (
            id       INTEGER PRIMARY KEY CHECK (id = 0),
            seq      BIGINT NOT NULL,
            records  TEXT NOT NULL,
            checksum BYTEA NOT NULL
        );
        CREATE TABLE lease (
            id         INTEGER PRIMARY KEY CHECK (id = 0),
            token      BIGINT NOT NULL,
            holder     TEXT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL
        );
        INSERT INTO lease (id, token, holder, expires_at) VALUES (0, 0, '', 'epoch');
    ",
    },
    Migration {
        // One channel's records found by their path (`Store::load_channel`): an index lookup,
        // not a scan of every record. In the "C" collation, bytewise, the order the range of
        // `store::channel_paths` relies on (a locale's collation may ignore the '/'), and the
        // collation the query names. Not unique: a `Display` path need not be.
        version: 2,
        sql: "
        CREATE INDEX records_path ON records (path COLLATE \"C\");
    ",
    },
];

/// The stored schema version of `schema` (0 when the schema has no table at all), reading only.
pub(super) fn inspect(client: &mut impl GenericClient, schema: &str) -> Result<u32, StoreError> {
    let err = pg("reading the schema");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .map_err(&err)?
        .get(0);
    if tables == 0 {
        return Ok(0);
    }
    let has_meta: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = $1 AND table_name = 'meta'",
            &[&schema],
        )
        .map_err(&err)?
        .get(0);
    if has_meta == 0 {
        return Err(StoreError::NotAStore {
            reason: format!("schema {schema} has tables but no meta table"),
        });
    }
    let sql = format!("SELECT value FROM {}.meta WHERE name = $1", quoted(schema));
    let mut meta = |name: &str| -> Result<Option<String>, StoreError> {
        let rows = client
            .query(&sql, &[&name])
            .map_err(pg("reading the meta table"))?;
        match rows.first() {
            None => Ok(None),
            Some(row) => row.try_get(0).map(Some).map_err(|e| StoreError::Corrupt {
                what: "schema",
                key: format!("meta/{name}"),
                reason: e.to_string(),
            }),
        }
    };
    if meta("magic")?.as_deref() != Some(MAGIC) {
        return Err(StoreError::NotAStore {
            reason: "the meta table lacks the contractcourt magic".into(),
        });
    }
    let version = meta("schema_version")?.unwrap_or_default();
    match version.parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(StoreError::Corrupt {
            what: "schema",
            key: "meta/schema_version".into(),
            reason: format!("invalid schema version {version:?}"),
        }),
    }
}

/// Bring `schema` to the last of `steps` (in production [`MIGRATIONS`]), in one transaction
/// with the version update, under an advisory lock on the schema's name: on any error nothing
/// changes. A store newer than the steps is [`StoreError::FutureVersion`].
pub(super) fn migrate(
    client: &mut postgres::Client,
    schema: &str,
    steps: &[Migration],
) -> Result<(), StoreError> {
    let err = pg("migrating the schema");
    let target = steps.last().map_or(0, |m| m.version);
    let mut tx = client.transaction().map_err(&err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('contractcourt-migrate/' || $1))",
        &[&schema],
    )
    .map_err(&err)?;
    // Read again under the lock.
    let found = inspect(&mut tx, schema)?;
    if found > target {
        return Err(StoreError::FutureVersion {
            found,
            supported: target,
        });
    }
    if found == target {
        return Ok(());
    }
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quoted(schema)))
        .map_err(&err)?;
    tx.batch_execute(&format!("SET LOCAL search_path TO {}", quoted(schema)))
        .map_err(&err)?;
    for step in steps.iter().filter(|m| m.version > found) {
        tx.batch_execute(step.sql).map_err(&err)?;
    }
    if found == 0 {
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('magic', $1)",
            &[&MAGIC],
        )
        .map_err(&err)?;
    }
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('schema_version', $1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[&target.to_string()],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_migrations_are_numbered_consecutively_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
        }
        assert_eq!(
            MIGRATIONS.last().map(|m| m.version),
            Some(PG_SCHEMA_VERSION)
        );
    }
}
