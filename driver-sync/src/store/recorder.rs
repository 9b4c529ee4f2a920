//! The flight recorder's step commit in the SQLite store: a step's event (as the recorder keeps
//! it), the digest of the actions the step produced and the step's batches, in **one** SQLite
//! transaction: one sync per step. See [`super::super::Store::commit_step`].
//!
//! On disk (schema version 2): `step_digests(seq, digest, checksum)`, one row per event recorded
//! through a step commit, `seq` the event's sequence number, `digest` the 32-byte
//! [`super::super::StepDigest`]; the checksum is SHA256 over `seq` and `digest` with its own
//! domain tag, verified on every read. Events recorded by a version-1 store (before digests)
//! have no row.

use contractcourt_core::action::{Batch, Record, RecordKey};
use contractcourt_core::event::Event;
use rusqlite::{params, Connection, TransactionBehavior};

use super::super::checksum::{digest_checksum, encode_start, event_checksum, start_checksum};
use super::super::{encode_event, Records, StepDigest, StoreError};
use super::{apply, col_blob, col_int, corrupt, sql, SqliteStore};
use super::{INSERT_EVENT, NEXT_EVENT};

const INSERT_DIGEST: &str = "INSERT INTO step_digests (seq, digest, checksum) VALUES (?1, ?2, ?3)";
const SELECT_DIGESTS: &str =
    "SELECT seq, digest, checksum FROM step_digests WHERE seq >= ?1 ORDER BY seq LIMIT ?2";

impl SqliteStore {
    /// [`super::super::Store::commit_step`]: the event, its digest and every batch in one
    /// immediate transaction; on any error it is rolled back and nothing is visible.
    pub(super) fn commit_step_tx(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        self.writable()?;
        self.forget_verified();
        let json = encode_event(event)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("beginning a step commit"))?;
        let seq: i64 = tx
            .prepare_cached(NEXT_EVENT)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(sql("numbering an event"))?;
        let number = u64::try_from(seq)
            .map_err(|_| corrupt("event log", seq.to_string(), "negative".into()))?;
        let sum = event_checksum(seq, &json);
        tx.prepare_cached(INSERT_EVENT)
            .and_then(|mut s| s.execute(params![seq, json, &sum[..]]))
            .map_err(sql("recording an event"))?;
        let dsum = digest_checksum(seq, step);
        tx.prepare_cached(INSERT_DIGEST)
            .and_then(|mut s| s.execute(params![seq, &step[..], &dsum[..]]))
            .map_err(sql("recording a step digest"))?;
        for op in batches.iter().flat_map(|b| &b.ops) {
            apply(&tx, op)?;
        }
        tx.commit().map_err(sql("committing a step"))?;
        Ok(number)
    }
}

/// [`super::super::Store::step_digests`] on a connection: verified rows from `from_seq` on.
pub(super) fn read_digests(
    conn: &Connection,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, StepDigest)>, StoreError> {
    let Ok(from) = i64::try_from(from_seq) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let err = sql("reading step digests");
    let mut stmt = conn.prepare_cached(SELECT_DIGESTS).map_err(&err)?;
    let mut rows = stmt.query(params![from, limit]).map_err(&err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        let seq = col_int(row, 0).map_err(|r| corrupt("step digest", "?".into(), r))?;
        let key = seq.to_string();
        let step: StepDigest = col_blob(row, 1)
            .and_then(|b| <[u8; 32]>::try_from(b).map_err(|_| "digest is not 32 bytes".into()))
            .map_err(|r| corrupt("step digest", key.clone(), r))?;
        let sum = col_blob(row, 2).map_err(|r| corrupt("step digest", key.clone(), r))?;
        if sum != digest_checksum(seq, &step) {
            return Err(corrupt("step digest", key, "checksum mismatch".into()));
        }
        let number =
            u64::try_from(seq).map_err(|_| corrupt("step digest", key, "negative".into()))?;
        out.push((number, step));
    }
    Ok(out)
}

const SELECT_START: &str = "SELECT seq, records, checksum FROM recorder_start WHERE id = 0";
const PUT_START: &str = "INSERT INTO recorder_start (id, seq, records, checksum) \
     VALUES (0, ?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, \
     records = excluded.records, checksum = excluded.checksum";
const PRUNE_EVENTS: &str = "DELETE FROM events WHERE seq < ?1";
const PRUNE_DIGESTS: &str = "DELETE FROM step_digests WHERE seq < ?1";

impl SqliteStore {
    /// [`super::super::Store::prune_recorder`] in one immediate transaction.
    pub(super) fn prune_recorder_tx(
        &mut self,
        keep_from: u64,
        start: &Records,
    ) -> Result<(), StoreError> {
        self.writable()?;
        let seq = i64::try_from(keep_from).map_err(|_| StoreError::OutOfRange {
            what: "event sequence number",
            value: keep_from,
        })?;
        let json = encode_start(start)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("beginning a recorder prune"))?;
        let next: i64 = tx
            .prepare_cached(NEXT_EVENT)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(sql("numbering an event"))?;
        if seq > next || seq < first_kept(&tx)? as i64 {
            return Err(StoreError::OutOfRange {
                what: "replay start",
                value: keep_from,
            });
        }
        let sum = start_checksum(seq, &json);
        let err = sql("pruning the flight recorder");
        tx.execute(PUT_START, params![seq, json, &sum[..]])
            .map_err(&err)?;
        tx.execute(PRUNE_EVENTS, params![seq]).map_err(&err)?;
        tx.execute(PRUNE_DIGESTS, params![seq]).map_err(&err)?;
        tx.commit().map_err(sql("committing a recorder prune"))
    }
}

/// The stored replay start, verified: the first kept event's number and the records before it.
pub(super) fn read_start(conn: &Connection) -> Result<Option<(u64, Records)>, StoreError> {
    let err = sql("reading the replay start");
    let mut stmt = conn.prepare_cached(SELECT_START).map_err(&err)?;
    let mut rows = stmt.query([]).map_err(&err)?;
    let Some(row) = rows.next().map_err(&err)? else {
        return Ok(None);
    };
    let bad = |r: String| corrupt("replay start", String::new(), r);
    let seq = col_int(row, 0).map_err(bad)?;
    let json: String = row.get(1).map_err(|e| bad(e.to_string()))?;
    let sum = col_blob(row, 2).map_err(bad)?;
    if sum != start_checksum(seq, &json) {
        return Err(bad("checksum mismatch".into()));
    }
    let pairs: Vec<(RecordKey, Record)> =
        serde_json::from_str(&json).map_err(|e| bad(format!("undecodable: {e}")))?;
    let seq = u64::try_from(seq).map_err(|_| bad("negative sequence number".into()))?;
    Ok(Some((seq, pairs.into_iter().collect())))
}

/// The number of the first event the recorder keeps (0 if it was never pruned).
pub(super) fn first_kept(conn: &Connection) -> Result<u64, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM recorder_start WHERE id = 0")
        .and_then(|mut s| {
            let mut rows = s.query([])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })
        .map_err(sql("reading the replay start"))?;
    let seq = seq.unwrap_or(0);
    u64::try_from(seq).map_err(|_| corrupt("replay start", seq.to_string(), "negative".into()))
}

/// A store at schema version 1 (before the recorder's tables), for migration tests.
#[cfg(test)]
pub(super) fn store_at_version_1() -> SqliteStore {
    let mut conn = Connection::open_in_memory().unwrap();
    super::migrate(&mut conn, &super::MIGRATIONS[..1]).unwrap();
    SqliteStore {
        conn,
        read_only: false,
        verified: std::cell::RefCell::new(None),
        _owner: None,
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
