//! The SQLite store, the embedded default.
//!
//! # On disk
//!
//! - The SQLite header's `application_id` is [`APPLICATION_ID`]; any other SQLite file (or a file
//!   that is not SQLite) is refused with [`StoreError::NotAStore`] and left untouched.
//! - `meta(name, value)`: `magic` = `contractcourt-store` and `schema_version` (see
//!   [`SCHEMA_VERSION`]). This table's shape is frozen: every future version keeps it, so any
//!   version can read another's version number.
//! - `records(key, path, version, body, checksum)`: the keyed records. `key` (the primary key) is
//!   the record key's canonical JSON, which decodes back to the [`RecordKey`]; `path` is its
//!   `Display` form, for people and for finding one channel's records (index `records_path`,
//!   schema version 3: [`Store::load_channel`] reads the header's path and the paths under it);
//!   `body` is the body's canonical JSON text, stored and read back as it is (the engine decodes
//!   it; the store does not parse it).
//! - `log(channel, seq, version, body, checksum)`, primary key `(channel, seq)`: the append-only
//!   per-channel logs. `seq` holds the `u64` sequence number's bits as a signed integer.
//! - `events(seq, event, checksum)`: the flight recorder, `seq` dense from 0, or from the replay
//!   start after a prune; `step_digests` and `recorder_start` beside it (schema version 2; see
//!   the `recorder` module, `store/recorder.rs`).
//!
//! Every row's `checksum` is SHA256 over its other columns as stored (length-prefixed, with a
//! per-table domain tag), so a flipped byte, a truncated value or a row whose content was moved
//! to another key is detected. It is verified on every read. [`SqliteStore::open`] reads and
//! verifies every keyed record before it returns, and keeps them for the first [`Store::load`]
//! (unless a write comes between), so a restart reads and verifies each record once; log
//! entries and events are verified when read
//! (they can be large and are not all read at start), and [`SqliteStore::verify`] checks
//! everything.
//!
//! # Durability
//!
//! WAL journal with `synchronous=FULL`: a write transaction is on disk (WAL synced) before its
//! `COMMIT` returns, so each successful [`Store::commit`], [`Store::append_event`],
//! [`Store::commit_step`] (a step's event, digest and batches: one transaction, one sync) and
//! [`Store::prune_recorder`] survives a process crash and a power loss on a disk that honours
//! `fsync`. A crash mid-transaction leaves
//! the previous state (SQLite discards uncommitted WAL frames at the next open). One commit costs
//! one sync; see [`Store::commit_many`] for grouping.
//!
//! # Ownership
//!
//! A store opened read-write holds the lock of `PATH.lock` for as long as it is open (see
//! [`super::lock_path`]): one engine per store. A second read-write open, from this or another
//! process, fails with [`StoreError::Locked`]. SQLite runs in its normal locking mode, so
//! [`SqliteStore::open_read_only`] can read a store while its owner runs (WAL: it sees the
//! owner's last commit and never blocks it; a checkpoint in progress is waited for, up to a
//! busy timeout) or a copied field database, for replay, without changing a byte of it.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use contractcourt_core::action::{Batch, Record, RecordBody, RecordKey, RecordOp};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, Row, TransactionBehavior};

use super::checksum::{event_checksum, log_checksum, record_checksum};
use super::StepDigest;
use super::{
    channel_paths, check_channel_row, decode_event, encode_event, encode_key, Records, Store,
    StoreError,
};

#[path = "recorder.rs"]
mod recorder;

/// The schema version this code writes; older stores are migrated to it at open, newer ones are
/// refused ([`StoreError::FutureVersion`]).
pub const SCHEMA_VERSION: u32 = 3;

/// The SQLite header's `application_id` of a contractcourt store (`"ccrt"` in ASCII).
pub const APPLICATION_ID: i32 = 0x6363_7274;

/// The `meta` table's `magic` value.
const MAGIC: &str = "contractcourt-store";

/// How long an open waits for a lock held by someone else before it reports
/// [`StoreError::Locked`].
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

/// One step of the schema, from `version - 1` to `version`. Applied in order, all pending steps
/// in one transaction with the version update.
#[derive(Clone)]
struct Migration {
    version: u32,
    sql: &'static str,
}

/// Every migration, in order: `MIGRATIONS[i].version == i + 1`, the last is [`SCHEMA_VERSION`].
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
        CREATE TABLE meta (
            name  TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        ) STRICT;
        CREATE TABLE records (
            key      TEXT PRIMARY KEY NOT NULL,
            path     TEXT NOT NULL,
            version  INTEGER NOT NULL,
            body     TEXT NOT NULL,
            checksum BLOB NOT NULL
        ) STRICT;
        CREATE TABLE log (
            channel  BLOB NOT NULL,
            seq      INTEGER NOT NULL,
            version  INTEGER NOT NULL,
            body     TEXT NOT NULL,
            checksum BLOB NOT NULL,
            PRIMARY KEY (channel, seq)
        ) STRICT;
        CREATE TABLE events (
            seq      INTEGER PRIMARY KEY NOT NULL,
            event    TEXT NOT NULL,
            checksum BLOB NOT NULL
        ) STRICT;
    ",
    },
    Migration {
        // The digest of each step's actions, beside the event of the step, and where replay
        // starts after a prune (see `recorder`).
        version: 2,
        sql: "
        CREATE TABLE step_digests (
            seq      INTEGER PRIMARY KEY NOT NULL,
            digest   BLOB NOT NULL,
            checksum BLOB NOT NULL
        ) STRICT;
        CREATE TABLE recorder_start (
            id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 0),
            seq      INTEGER NOT NULL,
            records  TEXT NOT NULL,
            checksum BLOB NOT NULL
        ) STRICT;
    ",
    },
    Migration {
        // One channel's records found by their path (`Store::load_channel`): an index lookup,
        // not a scan of every record. Not unique: a `Display` path need not be.
        version: 3,
        sql: "
        CREATE INDEX records_path ON records (path);
    ",
    },
];

const PUT_RECORD: &str = "INSERT INTO records (key, path, version, body, checksum) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (key) DO UPDATE SET path = excluded.path, version = excluded.version, \
     body = excluded.body, checksum = excluded.checksum";
const DELETE_RECORD: &str = "DELETE FROM records WHERE key = ?1";
const SELECT_RECORDS: &str = "SELECT key, path, version, body, checksum FROM records";
const SELECT_RECORD: &str = "SELECT key, path, version, body, checksum FROM records WHERE key = ?1";
/// One channel's records by path (see `super::channel_paths`), through `records_path`; SQLite
/// compares text bytewise (the `BINARY` collation), the order the range relies on.
const SELECT_CHANNEL_RECORDS: &str = "SELECT key, path, version, body, checksum FROM records \
     WHERE path = ?1 OR (path >= ?2 AND path < ?3)";
const SELECT_LOG: &str = "SELECT version, body, checksum FROM log WHERE channel = ?1 AND seq = ?2";
const INSERT_LOG: &str =
    "INSERT INTO log (channel, seq, version, body, checksum) VALUES (?1, ?2, ?3, ?4, ?5)";
const SELECT_ALL_LOG: &str = "SELECT channel, seq, version, body, checksum FROM log";
/// The next event's number: one past the highest kept, or the replay start when a prune kept none.
const NEXT_EVENT: &str = "SELECT MAX(COALESCE((SELECT MAX(seq) + 1 FROM events), 0), \
     COALESCE((SELECT seq FROM recorder_start WHERE id = 0), 0))";
const INSERT_EVENT: &str = "INSERT INTO events (seq, event, checksum) VALUES (?1, ?2, ?3)";
const SELECT_ALL_EVENTS: &str = "SELECT seq, event, checksum FROM events ORDER BY seq";
const SELECT_EVENTS: &str =
    "SELECT seq, event, checksum FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2";

/// What [`SqliteStore::verify`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Keyed records verified.
    pub records: u64,
    /// Log entries verified.
    pub log_entries: u64,
    /// Events verified.
    pub events: u64,
}

/// A [`Store`] in a SQLite database (see the module documentation for the format and the
/// guarantees).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    read_only: bool,
    /// The records `open` verified, handed to the first `load` (taken, so they are held only
    /// until then) unless a write came between: each record is read and verified once on a
    /// restart, not twice.
    verified: RefCell<Option<Records>>,
    /// The owner's lock (read-write stores on a file); dropped after the connection.
    _owner: Option<super::owner::OwnerLock>,
}

impl SqliteStore {
    /// Open the store at `path`, creating it if the file does not exist or is empty.
    ///
    /// Before writing anything it checks that the file is a contractcourt store
    /// ([`StoreError::NotAStore`]), that its schema is not newer than this code's
    /// ([`StoreError::FutureVersion`]) and, for a store already at [`SCHEMA_VERSION`], that every
    /// keyed record passes its checksum ([`StoreError::Corrupt`]); any of these leaves the file
    /// untouched. Then it switches the file to WAL and migrates an older schema in one
    /// transaction. The store holds its owner's lock (`PATH.lock`) until dropped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path.as_ref(), flags)
            .map_err(sql("opening the database"))?;
        Self::start(conn, Some(path.as_ref()))
    }

    /// A fresh store in memory (for tests; nothing is durable).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql("opening an in-memory database"))?;
        Self::start(conn, None)
    }

    /// Open an existing store without writing to it, e.g. to replay a recorded history or to
    /// inspect a copied database. It must be at [`SCHEMA_VERSION`] (an older one cannot be
    /// migrated read-only: [`StoreError::OutdatedVersion`]). Writes fail with
    /// [`StoreError::ReadOnly`].
    ///
    /// The database file is never modified, but SQLite may leave its (empty) `-wal` and its
    /// `-shm` index file beside it: a read-only connection cannot remove them.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql("opening the database"))?;
        configure(&conn)?;
        conn.pragma_update(None, "query_only", "ON")
            .map_err(sql("configuring the connection"))?;
        match inspect(&conn)? {
            0 => Err(StoreError::NotAStore {
                reason: "the database is empty".into(),
            }),
            v if v > SCHEMA_VERSION => Err(StoreError::FutureVersion {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            v if v < SCHEMA_VERSION => Err(StoreError::OutdatedVersion {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            _ => {
                let records = read_records(&conn)?;
                Ok(SqliteStore {
                    conn,
                    read_only: true,
                    verified: RefCell::new(Some(records)),
                    _owner: None,
                })
            }
        }
    }

    /// Check, lock (a store on a file: its owner's lock, taken before the first write, so a
    /// file that is not a store gets no lock file beside it), switch to WAL, migrate.
    fn start(mut conn: Connection, path: Option<&Path>) -> Result<Self, StoreError> {
        let file = path.is_some();
        configure(&conn)?;
        // Everything up to the journal mode switch only reads.
        let found = inspect(&conn)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::FutureVersion {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let mut verified = None;
        if found == SCHEMA_VERSION {
            verified = Some(read_records(&conn)?);
        }
        let owner = path.map(super::owner::OwnerLock::take).transpose()?;
        // Writes from here on: a no-op when the file is already in WAL mode.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql("setting the journal mode"))?;
        if file && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend {
                backend: "sqlite",
                context: "setting the journal mode",
                source: format!("journal mode is {mode}, expected wal").into(),
            });
        }
        if found < SCHEMA_VERSION {
            migrate(&mut conn, MIGRATIONS)?;
            verified = Some(read_records(&conn)?);
        }
        Ok(SqliteStore {
            conn,
            read_only: false,
            verified: RefCell::new(verified),
            _owner: owner,
        })
    }

    /// Check everything: SQLite's own structure check (`PRAGMA quick_check`), then every keyed
    /// record, every log entry and every event (checksums, encodings, and that event sequence
    /// numbers are dense from 0). Reads only, one row at a time; takes time proportional to the
    /// database's size. For an operator's check command, not for every start.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut problems = Vec::new();
        self.conn
            .pragma_query(None, "quick_check", |row| {
                let line: String = row.get(0)?;
                if line != "ok" {
                    problems.push(line);
                }
                Ok(())
            })
            .map_err(sql("checking the database structure"))?;
        if !problems.is_empty() {
            return Err(StoreError::Corrupt {
                what: "database file",
                key: String::new(),
                reason: problems.join("; "),
            });
        }
        let mut report = VerifyReport {
            records: for_each_record(&self.conn, |_, _| ())?,
            ..VerifyReport::default()
        };
        let mut stmt = self
            .conn
            .prepare_cached(SELECT_ALL_LOG)
            .map_err(sql("reading the logs"))?;
        let mut rows = stmt.query([]).map_err(sql("reading the logs"))?;
        while let Some(row) = rows.next().map_err(sql("reading the logs"))? {
            let channel = col_blob(row, 0)
                .and_then(|b| <[u8; 32]>::try_from(b).map_err(|_| "channel is not 32 bytes".into()))
                .map_err(|reason| corrupt("log entry", "?".into(), reason))?;
            let seq = col_int(row, 1).map_err(|reason| corrupt("log entry", "?".into(), reason))?;
            decode_log_row(row, 2, &ChannelId(channel), from_sql_seq(seq))?;
            report.log_entries += 1;
        }
        // Streamed, not through `events`: one event may be a full block.
        let mut stmt = self
            .conn
            .prepare_cached(SELECT_ALL_EVENTS)
            .map_err(sql("reading events"))?;
        let mut rows = stmt.query([]).map_err(sql("reading events"))?;
        let first = recorder::first_kept(&self.conn)?;
        while let Some(row) = rows.next().map_err(sql("reading events"))? {
            decode_event_row(row, first + report.events)?;
            report.events += 1;
        }
        // The recorder's digests (32 bytes each, a window of them) and its replay start.
        recorder::read_digests(&self.conn, 0, usize::MAX)?;
        recorder::read_start(&self.conn)?;
        Ok(report)
    }

    /// One keyed record, verified (a point lookup: it does not read or take the records `open`
    /// verified for the first [`Store::load`]).
    pub fn record(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        let err = sql("reading a record");
        let key_json = encode_key(key)?;
        let mut stmt = self.conn.prepare_cached(SELECT_RECORD).map_err(&err)?;
        let mut rows = stmt.query([key_json]).map_err(&err)?;
        match rows.next().map_err(&err)? {
            None => Ok(None),
            Some(row) => decode_record_row(row).map(|(_, record)| Some(record)),
        }
    }

    /// The records `open` verified are stale once anything is written.
    fn forget_verified(&mut self) {
        *self.verified.get_mut() = None;
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::ReadOnly)
        } else {
            Ok(())
        }
    }
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Records, StoreError> {
        match self.verified.borrow_mut().take() {
            Some(records) => Ok(records),
            None => read_records(&self.conn),
        }
    }

    /// Read from the table, through the `records_path` index; the records `open` verified are
    /// left for the first `load`.
    fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError> {
        read_channel_records(&self.conn, &channel)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.commit_many(std::slice::from_ref(batch))
    }

    /// All batches in one SQLite transaction: one sync for the whole group.
    fn commit_many(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        self.writable()?;
        self.forget_verified();
        if batches.iter().all(|b| b.ops.is_empty()) {
            return Ok(());
        }
        // Dropping the transaction without committing (on any error below) rolls it back.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("beginning a commit"))?;
        for op in batches.iter().flat_map(|b| &b.ops) {
            apply(&tx, op)?;
        }
        tx.commit().map_err(sql("committing a batch"))
    }

    fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError> {
        read_log_entry(&self.conn, &channel, seq)
    }

    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
        self.writable()?;
        let json = encode_event(event)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("beginning an event append"))?;
        let seq: i64 = tx
            .prepare_cached(NEXT_EVENT)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(sql("numbering an event"))?;
        let number = u64::try_from(seq).map_err(|_| {
            corrupt(
                "event log",
                seq.to_string(),
                "negative sequence number".into(),
            )
        })?;
        let sum = event_checksum(seq, &json);
        tx.prepare_cached(INSERT_EVENT)
            .and_then(|mut s| s.execute(params![seq, json, &sum[..]]))
            .map_err(sql("recording an event"))?;
        tx.commit().map_err(sql("committing an event"))?;
        Ok(number)
    }

    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        let Ok(from) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(SELECT_EVENTS)
            .map_err(sql("reading events"))?;
        let mut rows = stmt
            .query(params![from, limit])
            .map_err(sql("reading events"))?;
        let mut out = Vec::new();
        let mut expected = from_seq.max(recorder::first_kept(&self.conn)?);
        while let Some(row) = rows.next().map_err(sql("reading events"))? {
            out.push((expected, decode_event_row(row, expected)?));
            expected += 1;
        }
        Ok(out)
    }

    fn commit_step(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        self.commit_step_tx(event, step, batches)
    }

    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StepDigest)>, StoreError> {
        recorder::read_digests(&self.conn, from_seq, limit)
    }

    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
        self.prune_recorder_tx(keep_from, start)
    }

    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
        recorder::read_start(&self.conn)
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        let next: i64 = self
            .conn
            .prepare_cached(NEXT_EVENT)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(sql("counting events"))?;
        u64::try_from(next).map_err(|_| corrupt("event log", next.to_string(), "negative".into()))
    }
}

/// Per-connection settings (none of them writes to the file).
fn configure(conn: &Connection) -> Result<(), StoreError> {
    let err = sql("configuring the connection");
    conn.set_prepared_statement_cache_capacity(32);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    // Where `fsync` does not flush the disk's cache (macOS), ask for the full flush.
    conn.pragma_update(None, "fullfsync", "ON").map_err(&err)?;
    conn.pragma_update(None, "checkpoint_fullfsync", "ON")
        .map_err(&err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(&err)?;
    conn.pragma_update(None, "trusted_schema", "OFF")
        .map_err(&err)?;
    Ok(())
}

/// The stored schema version (0 for an empty database), reading only.
fn inspect(conn: &Connection) -> Result<u32, StoreError> {
    let err = sql("reading the database header");
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(&err)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(&err)?;
    if app_id == 0 && objects == 0 {
        return Ok(0);
    }
    if app_id != APPLICATION_ID {
        return Err(StoreError::NotAStore {
            reason: format!("application id {app_id:#x}, expected {APPLICATION_ID:#x}"),
        });
    }
    let has_meta: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get(0),
        )
        .map_err(&err)?;
    if has_meta == 0 {
        return Err(corrupt("schema", "meta".into(), "no meta table".into()));
    }
    let meta = |name: &str| -> Result<Option<String>, StoreError> {
        let mut stmt = conn
            .prepare("SELECT value FROM meta WHERE name = ?1")
            .map_err(sql("reading the meta table"))?;
        let mut rows = stmt.query([name]).map_err(sql("reading the meta table"))?;
        match rows.next().map_err(sql("reading the meta table"))? {
            None => Ok(None),
            Some(row) => col_text(row, 0)
                .map(|s| Some(s.to_owned()))
                .map_err(|r| corrupt("schema", format!("meta/{name}"), r)),
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
        _ => Err(corrupt(
            "schema",
            "meta/schema_version".into(),
            format!("invalid schema version {version:?}"),
        )),
    }
}

/// Bring the schema to the last of `steps` (in production [`MIGRATIONS`], ending at
/// [`SCHEMA_VERSION`]), applying the steps after the stored version in order, all in one
/// transaction with the version update: on any error nothing changes.
fn migrate(conn: &mut Connection, steps: &[Migration]) -> Result<(), StoreError> {
    let err = sql("migrating the schema");
    let target = steps.last().map_or(0, |m| m.version);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    // Read again under the write lock.
    let found = inspect(&tx)?;
    if found > target {
        return Err(StoreError::FutureVersion {
            found,
            supported: target,
        });
    }
    for step in steps.iter().filter(|m| m.version > found) {
        tx.execute_batch(step.sql).map_err(&err)?;
    }
    if found == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(&err)?;
        tx.execute(
            "INSERT INTO meta (name, value) VALUES ('magic', ?1)",
            [MAGIC],
        )
        .map_err(&err)?;
    }
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('schema_version', ?1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [target.to_string()],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)
}

/// Apply one operation inside a write transaction.
fn apply(conn: &Connection, op: &RecordOp) -> Result<(), StoreError> {
    match op {
        RecordOp::Put { key, record } => {
            let key_json = encode_key(key)?;
            let path = key.to_string();
            let version = i64::from(record.version);
            let body = record.body.as_str();
            let sum = record_checksum(&key_json, &path, version, body);
            conn.prepare_cached(PUT_RECORD)
                .and_then(|mut s| s.execute(params![key_json, path, version, body, &sum[..]]))
                .map_err(sql("writing a record"))?;
        }
        RecordOp::Delete { key } => {
            let key_json = encode_key(key)?;
            conn.prepare_cached(DELETE_RECORD)
                .and_then(|mut s| s.execute([key_json]))
                .map_err(sql("deleting a record"))?;
        }
        RecordOp::Append {
            channel,
            seq,
            record,
        } => match read_log_entry(conn, channel, *seq)? {
            Some(existing) if existing == *record => {}
            Some(_) => {
                return Err(StoreError::LogConflict {
                    channel: *channel,
                    seq: *seq,
                })
            }
            None => {
                let seq_sql = to_sql_seq(*seq);
                let version = i64::from(record.version);
                let body = record.body.as_str();
                let sum = log_checksum(&channel.0, seq_sql, version, body);
                conn.prepare_cached(INSERT_LOG)
                    .and_then(|mut s| {
                        s.execute(params![&channel.0[..], seq_sql, version, body, &sum[..]])
                    })
                    .map_err(sql("appending to a log"))?;
            }
        },
    }
    Ok(())
}

/// Every keyed record, read, then verified and decoded on every core (the first bad row in read
/// order is the one reported, as reading them one at a time would).
fn read_records(conn: &Connection) -> Result<Records, StoreError> {
    let err = sql("reading records");
    let mut stmt = conn.prepare_cached(SELECT_RECORDS).map_err(&err)?;
    let mut rows = stmt.query([]).map_err(&err)?;
    let mut raw = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        raw.push(RecordRow::read(row)?);
    }
    let checked = crate::parallel::map_chunks(raw, crate::parallel::cores(), 4096, |part| {
        part.into_iter().map(RecordRow::check).collect()
    });
    checked.into_iter().collect()
}

/// Read and verify every keyed record, handing each to `f`; returns how many there were.
fn for_each_record(
    conn: &Connection,
    mut f: impl FnMut(RecordKey, Record),
) -> Result<u64, StoreError> {
    let err = sql("reading records");
    let mut stmt = conn.prepare_cached(SELECT_RECORDS).map_err(&err)?;
    let mut rows = stmt.query([]).map_err(&err)?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(&err)? {
        let (key, record) = decode_record_row(row)?;
        f(key, record);
        count += 1;
    }
    Ok(count)
}

fn decode_record_row(row: &Row<'_>) -> Result<(RecordKey, Record), StoreError> {
    RecordRow::read(row)?.check()
}

/// One channel's keyed records (found by path, an index lookup), each verified as
/// [`read_records`] verifies it and of that channel ([`check_channel_row`]), in key order.
fn read_channel_records(
    conn: &Connection,
    channel: &ChannelId,
) -> Result<Vec<(RecordKey, Record)>, StoreError> {
    let err = sql("reading a channel's records");
    let [header, from, to] = channel_paths(channel);
    let mut stmt = conn.prepare_cached(SELECT_CHANNEL_RECORDS).map_err(&err)?;
    let mut rows = stmt.query(params![header, from, to]).map_err(&err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        let raw = RecordRow::read(row)?;
        let path = raw.path.clone();
        let (key, record) = raw.check()?;
        check_channel_row(channel, &key, &path)?;
        out.push((key, record));
    }
    // Path order is not key order (a resolver's `txid:10` sorts before `txid:2`).
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// A keyed record's row as stored, not yet checked.
struct RecordRow {
    key: String,
    path: String,
    version: i64,
    body: String,
    sum: Vec<u8>,
}

impl RecordRow {
    /// The row's columns, each of the type it must have.
    fn read(row: &Row<'_>) -> Result<RecordRow, StoreError> {
        let key = col_text(row, 0).map_err(|r| corrupt("record", "?".into(), r))?;
        let path = col_text(row, 1).map_err(|r| corrupt("record", key.into(), r))?;
        let bad = |reason: String| corrupt("record", path.into(), reason);
        Ok(RecordRow {
            key: key.to_string(),
            path: path.to_string(),
            version: col_int(row, 2).map_err(bad)?,
            body: col_text(row, 3).map_err(bad)?.to_string(),
            sum: col_blob(row, 4).map_err(bad)?.to_vec(),
        })
    }

    /// The record, if its checksum holds and its key is one this build writes.
    fn check(self) -> Result<(RecordKey, Record), StoreError> {
        let RecordRow {
            key: key_json,
            path,
            version,
            body,
            sum,
        } = self;
        let bad = |reason: String| corrupt("record", path.clone(), reason);
        if record_checksum(&key_json, &path, version, &body)[..] != *sum {
            return Err(bad("checksum mismatch".into()));
        }
        let key: RecordKey =
            serde_json::from_str(&key_json).map_err(|e| bad(format!("undecodable key: {e}")))?;
        if encode_key(&key)? != key_json {
            return Err(bad("key is not in canonical form".into()));
        }
        let record = decode_record(version, body).map_err(bad)?;
        Ok((key, record))
    }
}

fn decode_record(version: i64, body: String) -> Result<Record, String> {
    let version = u32::try_from(version).map_err(|_| format!("invalid version {version}"))?;
    Ok(Record {
        version,
        body: RecordBody::from_canonical_text(body),
    })
}

/// One verified log entry (a point lookup on the primary key).
fn read_log_entry(
    conn: &Connection,
    channel: &ChannelId,
    seq: u64,
) -> Result<Option<Record>, StoreError> {
    let err = sql("reading a log entry");
    let mut stmt = conn.prepare_cached(SELECT_LOG).map_err(&err)?;
    let mut rows = stmt
        .query(params![&channel.0[..], to_sql_seq(seq)])
        .map_err(&err)?;
    match rows.next().map_err(&err)? {
        None => Ok(None),
        Some(row) => decode_log_row(row, 0, channel, seq).map(Some),
    }
}

/// Decode the `version, body, checksum` columns starting at `first` of a log row.
fn decode_log_row(
    row: &Row<'_>,
    first: usize,
    channel: &ChannelId,
    seq: u64,
) -> Result<Record, StoreError> {
    let bad = |reason: String| corrupt("log entry", format!("{channel}/{seq}"), reason);
    let version = col_int(row, first).map_err(bad)?;
    let body = col_text(row, first + 1).map_err(bad)?;
    let sum = col_blob(row, first + 2).map_err(bad)?;
    if log_checksum(&channel.0, to_sql_seq(seq), version, body)[..] != *sum {
        return Err(bad("checksum mismatch".into()));
    }
    decode_record(version, body.to_string()).map_err(bad)
}

/// Decode and verify a `seq, event, checksum` row that must be event number `expected` (event
/// sequence numbers are dense: a different one means events are missing).
fn decode_event_row(row: &Row<'_>, expected: u64) -> Result<Event, StoreError> {
    let key = expected.to_string();
    let seq = col_int(row, 0).map_err(|r| corrupt("event", key.clone(), r))?;
    if u64::try_from(seq).ok() != Some(expected) {
        return Err(corrupt(
            "event log",
            key,
            format!("event {expected} is missing (next stored is {seq})"),
        ));
    }
    let json = col_text(row, 1).map_err(|r| corrupt("event", key.clone(), r))?;
    let sum = col_blob(row, 2).map_err(|r| corrupt("event", key.clone(), r))?;
    if event_checksum(seq, json)[..] != *sum {
        return Err(corrupt("event", key, "checksum mismatch".into()));
    }
    decode_event(expected, json)
}

/// A log sequence number as stored: the same 64 bits, read as a signed integer (lossless).
fn to_sql_seq(seq: u64) -> i64 {
    i64::from_be_bytes(seq.to_be_bytes())
}

fn from_sql_seq(seq: i64) -> u64 {
    u64::from_be_bytes(seq.to_be_bytes())
}

fn col_text<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r str, String> {
    match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|e| e.to_string()),
        other => Err(format!("column {i} is {:?}, not text", other.data_type())),
    }
}

fn col_int(row: &Row<'_>, i: usize) -> Result<i64, String> {
    match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Integer(v) => Ok(v),
        other => Err(format!(
            "column {i} is {:?}, not an integer",
            other.data_type()
        )),
    }
}

fn col_blob<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r [u8], String> {
    match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Blob(bytes) => Ok(bytes),
        other => Err(format!("column {i} is {:?}, not a blob", other.data_type())),
    }
}

fn corrupt(what: &'static str, key: String, reason: String) -> StoreError {
    StoreError::Corrupt { what, key, reason }
}

/// Wrap a SQLite error, naming the cases a caller must tell apart.
fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotAStore {
            reason: e.to_string(),
        },
        Some(ErrorCode::DatabaseCorrupt) => corrupt("database file", String::new(), e.to_string()),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            reason: e.to_string(),
        },
        _ => StoreError::Backend {
            backend: "sqlite",
            context,
            source: Box::new(e),
        },
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A file-backed store in a fresh temporary directory, removed on drop.

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A fresh, empty temporary directory, removed on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "contractcourt-store-unit-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A [`SqliteStore`] in a file of its own temporary directory.
    pub(crate) struct TempStore {
        // Field order: the store closes before its directory goes.
        store: SqliteStore,
        _dir: TempDir,
    }

    impl TempStore {
        pub(crate) fn new() -> Self {
            let dir = TempDir::new();
            let store = SqliteStore::open(dir.path().join("store.sqlite")).unwrap();
            TempStore { store, _dir: dir }
        }
    }

    impl Store for TempStore {
        fn load(&self) -> Result<Records, StoreError> {
            self.store.load()
        }
        fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError> {
            self.store.load_channel(channel)
        }
        fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
            self.store.commit(batch)
        }
        fn commit_many(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
            self.store.commit_many(batches)
        }
        fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError> {
            self.store.read_log(channel, seq)
        }
        fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
            self.store.append_event(event)
        }
        fn commit_step(
            &mut self,
            event: &Event,
            step: &StepDigest,
            batches: &[&Batch],
        ) -> Result<u64, StoreError> {
            self.store.commit_step(event, step, batches)
        }
        fn step_digests(
            &self,
            from_seq: u64,
            limit: usize,
        ) -> Result<Vec<(u64, StepDigest)>, StoreError> {
            self.store.step_digests(from_seq, limit)
        }
        fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
            self.store.prune_recorder(keep_from, start)
        }
        fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
            self.store.replay_start()
        }
        fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
            self.store.events(from_seq, limit)
        }
        fn event_count(&self) -> Result<u64, StoreError> {
            self.store.event_count()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use std::path::Path;

    use super::test_support::TempDir;
    use super::*;
    use crate::store::conformance::{append, batch, chan, channel_records, put, rec, some_events};

    #[test]
    fn migrations_are_numbered_consecutively_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    fn stored_version(conn: &Connection) -> u32 {
        inspect(conn).unwrap()
    }

    fn has_column(conn: &Connection, table: &str, column: &str) -> bool {
        conn.prepare(&format!("SELECT {column} FROM {table}"))
            .is_ok()
    }

    #[test]
    fn migrations_run_in_order_from_the_stored_version_and_keep_data() {
        let mut store = recorder::store_at_version_1();
        store
            .commit(&batch(vec![put(RecordKey::Node, rec(1, json!("kept")))]))
            .unwrap();
        assert_eq!(stored_version(&store.conn), 1);
        let v2 = Migration {
            version: 2,
            sql: "ALTER TABLE records ADD COLUMN note TEXT;",
        };
        let v3 = Migration {
            version: 3,
            sql: "CREATE TABLE extra (x INTEGER) STRICT;",
        };
        let v4 = Migration {
            version: 4,
            sql: "CREATE TABLE more (y INTEGER) STRICT;",
        };
        // Step 1 is not run again (it would fail: its tables exist).
        migrate(&mut store.conn, &[MIGRATIONS[0].clone(), v2.clone()]).unwrap();
        assert_eq!(stored_version(&store.conn), 2);
        assert!(has_column(&store.conn, "records", "note"));
        migrate(&mut store.conn, &[MIGRATIONS[0].clone(), v2, v3, v4]).unwrap();
        assert_eq!(stored_version(&store.conn), 4);
        assert!(has_column(&store.conn, "extra", "x"));
        assert!(has_column(&store.conn, "more", "y"));
        assert_eq!(
            store.load().unwrap()[&RecordKey::Node],
            rec(1, json!("kept"))
        );
        // This code knows only versions 1 to 3: the store is from the future.
        assert_eq!(SCHEMA_VERSION, 3);
        assert!(matches!(
            migrate(&mut store.conn, MIGRATIONS),
            Err(StoreError::FutureVersion {
                found: 4,
                supported: 3
            })
        ));
    }

    /// A store on a file written by the program of schema version `version` (whose records
    /// have the same rows as today's: the later steps add tables and an index only).
    fn file_store_at_version(path: &Path, version: u32) -> SqliteStore {
        let mut conn = Connection::open(path).unwrap();
        configure(&conn).unwrap();
        migrate(&mut conn, &MIGRATIONS[..version as usize]).unwrap();
        SqliteStore {
            conn,
            read_only: false,
            verified: RefCell::new(None),
            _owner: None,
        }
    }

    fn has_index(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    fn put_all(records: &[(RecordKey, Record)]) -> Batch {
        batch(
            records
                .iter()
                .map(|(k, r)| put(k.clone(), r.clone()))
                .collect(),
        )
    }

    #[test]
    fn a_version_2_store_opens_migrates_and_loads_a_channel() {
        let dir = TempDir::new();
        let path = dir.path().join("v2.sqlite");
        let (one, two) = (channel_records(chan(1), 1), channel_records(chan(2), 2));
        {
            let mut old = file_store_at_version(&path, 2);
            old.commit(&put_all(&one)).unwrap();
            old.commit(&put_all(&two)).unwrap();
            old.commit(&batch(vec![put(RecordKey::Node, rec(1, json!("n")))]))
                .unwrap();
            assert_eq!(stored_version(&old.conn), 2);
            assert!(!has_index(&old.conn, "records_path"));
        }
        // Read-only, it cannot be migrated.
        assert!(matches!(
            SqliteStore::open_read_only(&path),
            Err(StoreError::OutdatedVersion {
                found: 2,
                supported: 3
            })
        ));
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(stored_version(&store.conn), SCHEMA_VERSION);
        assert!(has_index(&store.conn, "records_path"));
        assert_eq!(store.load_channel(chan(1)).unwrap(), one);
        assert_eq!(store.load_channel(chan(2)).unwrap(), two);
        assert_eq!(store.load_channel(chan(3)).unwrap(), vec![]);
        // The records `open` verified are still there for the first `load`.
        assert!(store.verified.borrow().is_some());
        let all = store.load().unwrap();
        assert!(store.verified.borrow().is_none());
        assert_eq!(all.len(), 9);
        assert_eq!(store.load_channel(chan(1)).unwrap(), one);
        drop(store);

        // Reopened at the current version: nothing to migrate, the same answers.
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.load_channel(chan(2)).unwrap(), two);
        assert_eq!(again.load().unwrap(), all);
        drop(again);
        let ro = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(ro.load_channel(chan(1)).unwrap(), one);
        drop(ro);

        // The program of version 2 refuses the migrated store and leaves it as it is.
        let mut conn = Connection::open(&path).unwrap();
        assert!(matches!(
            migrate(&mut conn, &MIGRATIONS[..2]),
            Err(StoreError::FutureVersion {
                found: 3,
                supported: 2
            })
        ));
        assert_eq!(stored_version(&conn), 3);
    }

    #[test]
    fn load_channel_reads_through_the_path_index() {
        let store = SqliteStore::open_in_memory().unwrap();
        let [header, from, to] = channel_paths(&chan(1));
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {SELECT_CHANNEL_RECORDS}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params![header, from, to], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let searches: Vec<&String> = plan.iter().filter(|l| l.contains("records")).collect();
        assert!(!searches.is_empty(), "{plan:?}");
        for line in searches {
            assert!(line.contains("USING INDEX records_path"), "{plan:?}");
        }
    }

    #[test]
    fn load_channel_verifies_only_and_every_row_it_reads() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        let one = channel_records(chan(1), 1);
        store.commit(&put_all(&one)).unwrap();
        store
            .commit(&put_all(&channel_records(chan(2), 2)))
            .unwrap();
        // Another channel's bad row is not read.
        let two = RecordKey::Channel { channel: chan(2) }.to_string();
        store
            .conn
            .execute(
                "UPDATE records SET body = '{\"h\":3}' WHERE path = ?1",
                [&two],
            )
            .unwrap();
        assert_eq!(store.load_channel(chan(1)).unwrap(), one);
        match store.load_channel(chan(2)) {
            Err(StoreError::Corrupt { what, key, reason }) => {
                assert_eq!((what, key.as_str()), ("record", two.as_str()));
                assert_eq!(reason, "checksum mismatch");
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
        assert!(store.load().is_err());

        // A row whose path (checksum and all) names channel 1 while its key names channel 3:
        // not handed out as channel 1's.
        let key = RecordKey::Channel { channel: chan(3) };
        let key_json = encode_key(&key).unwrap();
        let path = format!("{}/resolver/x", RecordKey::Channel { channel: chan(1) });
        let sum = record_checksum(&key_json, &path, 1, "1");
        store
            .conn
            .execute(
                "INSERT INTO records (key, path, version, body, checksum) \
                 VALUES (?1, ?2, 1, '1', ?3)",
                params![key_json, path, &sum[..]],
            )
            .unwrap();
        match store.load_channel(chan(1)) {
            Err(StoreError::Corrupt { what, key, .. }) => {
                assert_eq!((what, key), ("record", path));
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        let mut store = recorder::store_at_version_1();
        let steps = [
            MIGRATIONS[0].clone(),
            Migration {
                version: 2,
                sql: "ALTER TABLE records ADD COLUMN note TEXT;",
            },
            Migration {
                version: 3,
                sql: "THIS IS NOT SQL;",
            },
        ];
        assert!(matches!(
            migrate(&mut store.conn, &steps),
            Err(StoreError::Backend {
                backend: "sqlite",
                ..
            })
        ));
        assert_eq!(stored_version(&store.conn), 1);
        assert!(!has_column(&store.conn, "records", "note"));
    }

    #[test]
    fn a_file_store_uses_wal_full_sync_and_foreign_keys() {
        let dir = TempDir::new();
        let store = SqliteStore::open(dir.path().join("s.sqlite")).unwrap();
        let c = &store.conn;
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = c
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        let fk: i64 = c
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        let app: i32 = c
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert_eq!(app, APPLICATION_ID);
        assert_eq!(inspect(c).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_record_moved_to_another_key_is_corrupt() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store
            .commit(&batch(vec![
                put(RecordKey::Node, rec(1, json!("node"))),
                put(
                    RecordKey::Channel { channel: chan(1) },
                    rec(1, json!("chan")),
                ),
            ]))
            .unwrap();
        // Give the channel record the node record's body and checksum.
        store
            .conn
            .execute(
                "UPDATE records SET (body, checksum) = \
                 (SELECT body, checksum FROM records WHERE path = 'node') \
                 WHERE path LIKE 'channel/%'",
                [],
            )
            .unwrap();
        match store.load() {
            Err(StoreError::Corrupt { what, reason, .. }) => {
                assert_eq!(what, "record");
                assert_eq!(reason, "checksum mismatch");
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_log_entry_moved_to_another_seq_is_corrupt() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store
            .commit(&batch(vec![append(chan(1), 1, rec(1, json!("one")))]))
            .unwrap();
        store.conn.execute("UPDATE log SET seq = 2", []).unwrap();
        assert_eq!(store.read_log(chan(1), 1).unwrap(), None);
        assert!(matches!(
            store.read_log(chan(1), 2),
            Err(StoreError::Corrupt {
                what: "log entry",
                ..
            })
        ));
        // An append over the corrupt entry is refused rather than compared with garbage.
        assert!(matches!(
            store.commit(&batch(vec![append(chan(1), 2, rec(1, json!("one")))])),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_gap_in_the_event_log_is_corrupt() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        for e in some_events(5) {
            store.append_event(&e).unwrap();
        }
        store
            .conn
            .execute("DELETE FROM events WHERE seq = 2", [])
            .unwrap();
        assert_eq!(store.events(0, 2).unwrap().len(), 2);
        assert!(matches!(
            store.events(0, 10),
            Err(StoreError::Corrupt {
                what: "event log",
                ..
            })
        ));
        assert!(matches!(
            store.events(2, 10),
            Err(StoreError::Corrupt {
                what: "event log",
                ..
            })
        ));
        assert!(store.verify().is_err());
    }

    #[test]
    fn verify_counts_everything_it_checked() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store
            .commit(&batch(vec![
                put(RecordKey::Node, rec(1, json!(1))),
                append(chan(1), 0, rec(1, json!(0))),
                append(chan(1), u64::MAX, rec(1, json!(0))),
            ]))
            .unwrap();
        for e in some_events(3) {
            store.append_event(&e).unwrap();
        }
        assert_eq!(
            store.verify().unwrap(),
            VerifyReport {
                records: 1,
                log_entries: 2,
                events: 3
            }
        );
    }

    #[test]
    fn log_sequence_numbers_map_losslessly() {
        for seq in [0, 1, 1 << 48, i64::MAX as u64, 1 << 63, u64::MAX] {
            assert_eq!(from_sql_seq(to_sql_seq(seq)), seq);
        }
    }

    #[test]
    fn errors_read_in_lower_case() {
        let errors = [
            StoreError::FutureVersion {
                found: 9,
                supported: 1,
            },
            StoreError::NotAStore {
                reason: "application id 0x1".into(),
            },
            StoreError::Corrupt {
                what: "record",
                key: "node".into(),
                reason: "checksum mismatch".into(),
            },
            StoreError::LogConflict {
                channel: chan(1),
                seq: 3,
            },
            StoreError::ReadOnly,
            StoreError::Injected,
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        }
    }
}
