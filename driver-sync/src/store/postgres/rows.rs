//! Reading and writing the PostgreSQL store's rows, each verified against its checksum
//! (`checksum.rs`, the same bytes as the SQLite store's) on every read.

use contractcourt_core::action::{Record, RecordBody, RecordKey, RecordOp};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;
use postgres::{GenericClient, Row, Statement};

use super::pg;
use crate::store::checksum::{
    digest_checksum, event_checksum, log_checksum, record_checksum, start_checksum,
};
use crate::store::{
    channel_paths, check_channel_row, decode_event, encode_key, Records, StepDigest, StoreError,
};

const PUT_RECORD: &str = "INSERT INTO records (key, path, version, body, checksum) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (key) DO UPDATE SET path = excluded.path, version = excluded.version, \
     body = excluded.body, checksum = excluded.checksum";
/// One channel's records by path (see `crate::store::channel_paths`), compared bytewise (the
/// "C" collation, whatever the database's) through the `records_path` index.
const SELECT_CHANNEL_RECORDS: &str = "SELECT key, path, version, body, checksum FROM records \
     WHERE path COLLATE \"C\" = $1 \
     OR (path COLLATE \"C\" >= $2 AND path COLLATE \"C\" < $3)";
const SELECT_LOG: &str = "SELECT version, body, checksum FROM log WHERE channel = $1 AND seq = $2";
const INSERT_LOG: &str =
    "INSERT INTO log (channel, seq, version, body, checksum) VALUES ($1, $2, $3, $4, $5)";
/// The next event's number: one past the highest kept, or the replay start when a prune kept none.
pub(super) const NEXT_EVENT: &str =
    "SELECT GREATEST(COALESCE((SELECT MAX(seq) + 1 FROM events), 0), \
     COALESCE((SELECT seq FROM recorder_start WHERE id = 0), 0))";

/// The statements of the hot path (every step's commit), prepared once per connection: each
/// later use is one round trip instead of two (parse, then execute).
#[derive(Clone)]
pub(super) struct Statements {
    put_record: Statement,
    delete_record: Statement,
    select_channel: Statement,
    select_log: Statement,
    insert_log: Statement,
    next_event: Statement,
    insert_event: Statement,
    insert_digest: Statement,
    pub(super) fence_select: Statement,
    pub(super) fence_extend: Statement,
}

impl Statements {
    /// Prepare them on `client` (the store's tables must exist).
    pub(super) fn prepare(client: &mut impl GenericClient) -> Result<Self, StoreError> {
        let mut p = |sql: &str| client.prepare(sql).map_err(pg("preparing statements"));
        Ok(Statements {
            put_record: p(PUT_RECORD)?,
            delete_record: p("DELETE FROM records WHERE key = $1")?,
            select_channel: p(SELECT_CHANNEL_RECORDS)?,
            select_log: p(SELECT_LOG)?,
            insert_log: p(INSERT_LOG)?,
            next_event: p(NEXT_EVENT)?,
            insert_event: p("INSERT INTO events (seq, event, checksum) VALUES ($1, $2, $3)")?,
            insert_digest: p(
                "INSERT INTO step_digests (seq, digest, checksum) VALUES ($1, $2, $3)",
            )?,
            fence_select: p("SELECT token FROM lease WHERE id = 0 FOR UPDATE")?,
            fence_extend: p(
                "UPDATE lease SET expires_at = now() + $1::bigint * interval '1 millisecond' \
                 WHERE id = 0",
            )?,
        })
    }
}

fn corrupt(what: &'static str, key: String, reason: String) -> StoreError {
    StoreError::Corrupt { what, key, reason }
}

/// A log sequence number as stored: the same 64 bits, read as a signed integer (lossless).
pub(super) fn to_sql_seq(seq: u64) -> i64 {
    i64::from_be_bytes(seq.to_be_bytes())
}

/// Column `i` of `row` as `T`, or why not (a wrong type or a NULL: a tampered row).
fn col<'r, T: postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> Result<T, String> {
    row.try_get(i).map_err(|e| format!("column {i}: {e}"))
}

/// Apply one operation inside a write transaction.
pub(super) fn apply(
    tx: &mut impl GenericClient,
    st: &Statements,
    op: &RecordOp,
) -> Result<(), StoreError> {
    match op {
        RecordOp::Put { key, record } => {
            let key_json = encode_key(key)?;
            let path = key.to_string();
            let version = i64::from(record.version);
            let body = record.body.as_str();
            let sum = record_checksum(&key_json, &path, version, body);
            tx.execute(
                &st.put_record,
                &[&key_json, &path, &version, &body, &&sum[..]],
            )
            .map_err(pg("writing a record"))?;
        }
        RecordOp::Delete { key } => {
            tx.execute(&st.delete_record, &[&encode_key(key)?])
                .map_err(pg("deleting a record"))?;
        }
        RecordOp::Append {
            channel,
            seq,
            record,
        } => match read_log_entry(tx, st, channel, *seq)? {
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
                tx.execute(
                    &st.insert_log,
                    &[&&channel.0[..], &seq_sql, &version, &body, &&sum[..]],
                )
                .map_err(pg("appending to a log"))?;
            }
        },
    }
    Ok(())
}

/// Every keyed record, verified.
pub(super) fn read_records(client: &mut impl GenericClient) -> Result<Records, StoreError> {
    let rows = client
        .query(
            "SELECT key, path, version, body, checksum FROM records",
            &[],
        )
        .map_err(pg("reading records"))?;
    rows.iter().map(decode_record_row).collect()
}

/// One channel's keyed records (found by path, an index lookup), each verified as
/// [`read_records`] verifies it and of that channel ([`check_channel_row`]), in key order.
pub(super) fn read_channel_records(
    client: &mut impl GenericClient,
    st: &Statements,
    channel: &ChannelId,
) -> Result<Vec<(RecordKey, Record)>, StoreError> {
    let [header, from, to] = channel_paths(channel);
    let rows = client
        .query(&st.select_channel, &[&header, &from, &to])
        .map_err(pg("reading a channel's records"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let (key, record) = decode_record_row(row)?;
        let path: &str = col(row, 1).map_err(|r| corrupt("record", "?".into(), r))?;
        check_channel_row(channel, &key, path)?;
        out.push((key, record));
    }
    // Path order is not key order (a resolver's `txid:10` sorts before `txid:2`).
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn decode_record_row(row: &Row) -> Result<(RecordKey, Record), StoreError> {
    let key_json: String = col(row, 0).map_err(|r| corrupt("record", "?".into(), r))?;
    let path: String = col(row, 1).map_err(|r| corrupt("record", key_json.clone(), r))?;
    let bad = |reason: String| corrupt("record", path.clone(), reason);
    let version: i64 = col(row, 2).map_err(bad)?;
    let body: String = col(row, 3).map_err(bad)?;
    let sum: &[u8] = col(row, 4).map_err(bad)?;
    if record_checksum(&key_json, &path, version, &body)[..] != *sum {
        return Err(bad("checksum mismatch".into()));
    }
    let key: RecordKey =
        serde_json::from_str(&key_json).map_err(|e| bad(format!("undecodable key: {e}")))?;
    if encode_key(&key)? != key_json {
        return Err(bad("key is not in canonical form".into()));
    }
    Ok((key, decode_record(version, body).map_err(bad)?))
}

fn decode_record(version: i64, body: String) -> Result<Record, String> {
    let version = u32::try_from(version).map_err(|_| format!("invalid version {version}"))?;
    Ok(Record {
        version,
        body: RecordBody::from_canonical_text(body),
    })
}

/// One verified log entry (a point lookup on the primary key).
pub(super) fn read_log_entry(
    client: &mut impl GenericClient,
    st: &Statements,
    channel: &ChannelId,
    seq: u64,
) -> Result<Option<Record>, StoreError> {
    let rows = client
        .query(&st.select_log, &[&&channel.0[..], &to_sql_seq(seq)])
        .map_err(pg("reading a log entry"))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let bad = |reason: String| corrupt("log entry", format!("{channel}/{seq}"), reason);
    let version: i64 = col(row, 0).map_err(bad)?;
    let body: String = col(row, 1).map_err(bad)?;
    let sum: &[u8] = col(row, 2).map_err(bad)?;
    if log_checksum(&channel.0, to_sql_seq(seq), version, &body)[..] != *sum {
        return Err(bad("checksum mismatch".into()));
    }
    decode_record(version, body).map(Some).map_err(bad)
}

/// The next event's number.
pub(super) fn next_event(
    client: &mut impl GenericClient,
    st: &Statements,
) -> Result<u64, StoreError> {
    let next: i64 = client
        .query_one(&st.next_event, &[])
        .map_err(pg("numbering an event"))?
        .get(0);
    u64::try_from(next).map_err(|_| corrupt("event log", next.to_string(), "negative".into()))
}

/// Insert event `seq` (and its step digest, if any) in a write transaction.
pub(super) fn insert_event(
    tx: &mut impl GenericClient,
    st: &Statements,
    seq: u64,
    json: &str,
    step: Option<&StepDigest>,
) -> Result<(), StoreError> {
    let seq = i64::try_from(seq).map_err(|_| StoreError::OutOfRange {
        what: "event sequence number",
        value: seq,
    })?;
    let sum = event_checksum(seq, json);
    tx.execute(&st.insert_event, &[&seq, &json, &&sum[..]])
        .map_err(pg("recording an event"))?;
    if let Some(step) = step {
        let dsum = digest_checksum(seq, step);
        tx.execute(&st.insert_digest, &[&seq, &&step[..], &&dsum[..]])
            .map_err(pg("recording a step digest"))?;
    }
    Ok(())
}

/// Whether event `seq` is stored as `json` (its checksum equal to the one an insert of `json`
/// at `seq` writes): a write whose `COMMIT` went unanswered looks for its event with this.
pub(super) fn event_landed(
    tx: &mut impl GenericClient,
    seq: u64,
    json: &str,
) -> Result<bool, StoreError> {
    let seq = i64::try_from(seq).map_err(|_| StoreError::OutOfRange {
        what: "event sequence number",
        value: seq,
    })?;
    let rows = tx
        .query("SELECT checksum FROM events WHERE seq = $1", &[&seq])
        .map_err(pg("reading an event back"))?;
    let sum = event_checksum(seq, json);
    Ok(rows
        .first()
        .and_then(|r| r.try_get::<_, &[u8]>(0).ok())
        .is_some_and(|stored| stored == &sum[..]))
}

/// Kept events from `from_seq` on, at most `limit`, verified and checked dense from the first
/// one expected (a missing number is a corrupt event log).
pub(super) fn read_events(
    client: &mut impl GenericClient,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>, StoreError> {
    let Ok(from) = i64::try_from(from_seq) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let first = from_seq.max(first_kept(client)?);
    let rows = client
        .query(
            "SELECT seq, event, checksum FROM events WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&from, &limit],
        )
        .map_err(pg("reading events"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (expected, row) in (first..).zip(&rows) {
        let key = expected.to_string();
        let seq: i64 = col(row, 0).map_err(|r| corrupt("event", key.clone(), r))?;
        if u64::try_from(seq).ok() != Some(expected) {
            return Err(corrupt(
                "event log",
                key,
                format!("event {expected} is missing (next stored is {seq})"),
            ));
        }
        let json: String = col(row, 1).map_err(|r| corrupt("event", key.clone(), r))?;
        let sum: &[u8] = col(row, 2).map_err(|r| corrupt("event", key.clone(), r))?;
        if event_checksum(seq, &json)[..] != *sum {
            return Err(corrupt("event", key, "checksum mismatch".into()));
        }
        out.push((expected, decode_event(expected, &json)?));
    }
    Ok(out)
}

/// Verified step digests from `from_seq` on, at most `limit`.
pub(super) fn read_digests(
    client: &mut impl GenericClient,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, StepDigest)>, StoreError> {
    let Ok(from) = i64::try_from(from_seq) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT seq, digest, checksum FROM step_digests WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&from, &limit],
        )
        .map_err(pg("reading step digests"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = col(row, 0).map_err(|r| corrupt("step digest", "?".into(), r))?;
        let key = seq.to_string();
        let bad = |r: String| corrupt("step digest", key.clone(), r);
        let raw: &[u8] = col(row, 1).map_err(bad)?;
        let step = StepDigest::try_from(raw).map_err(|_| bad("digest is not 32 bytes".into()))?;
        let sum: &[u8] = col(row, 2).map_err(bad)?;
        if sum != digest_checksum(seq, &step) {
            return Err(bad("checksum mismatch".into()));
        }
        let number = u64::try_from(seq).map_err(|_| bad("negative".into()))?;
        out.push((number, step));
    }
    Ok(out)
}

/// The stored replay start, verified.
pub(super) fn read_start(
    client: &mut impl GenericClient,
) -> Result<Option<(u64, Records)>, StoreError> {
    let rows = client
        .query(
            "SELECT seq, records, checksum FROM recorder_start WHERE id = 0",
            &[],
        )
        .map_err(pg("reading the replay start"))?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let bad = |r: String| corrupt("replay start", String::new(), r);
    let seq: i64 = col(row, 0).map_err(bad)?;
    let json: String = col(row, 1).map_err(bad)?;
    let sum: &[u8] = col(row, 2).map_err(bad)?;
    if sum != start_checksum(seq, &json) {
        return Err(bad("checksum mismatch".into()));
    }
    let pairs: Vec<(RecordKey, Record)> =
        serde_json::from_str(&json).map_err(|e| bad(format!("undecodable: {e}")))?;
    let seq = u64::try_from(seq).map_err(|_| bad("negative sequence number".into()))?;
    Ok(Some((seq, pairs.into_iter().collect())))
}

/// The number of the first event the recorder keeps (0 if it was never pruned).
pub(super) fn first_kept(client: &mut impl GenericClient) -> Result<u64, StoreError> {
    let rows = client
        .query("SELECT seq FROM recorder_start WHERE id = 0", &[])
        .map_err(pg("reading the replay start"))?;
    let Some(row) = rows.first() else {
        return Ok(0);
    };
    let seq: i64 = col(row, 0).map_err(|r| corrupt("replay start", String::new(), r))?;
    u64::try_from(seq).map_err(|_| corrupt("replay start", seq.to_string(), "negative".into()))
}

/// Store the replay start and delete every event and digest before it (in a write transaction).
pub(super) fn prune(tx: &mut impl GenericClient, seq: i64, json: &str) -> Result<(), StoreError> {
    let err = pg("pruning the flight recorder");
    let sum = start_checksum(seq, json);
    tx.execute(
        "INSERT INTO recorder_start (id, seq, records, checksum) VALUES (0, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, records = excluded.records, \
         checksum = excluded.checksum",
        &[&seq, &json, &&sum[..]],
    )
    .map_err(&err)?;
    tx.execute("DELETE FROM events WHERE seq < $1", &[&seq])
        .map_err(&err)?;
    tx.execute("DELETE FROM step_digests WHERE seq < $1", &[&seq])
        .map_err(&err)?;
    Ok(())
}
