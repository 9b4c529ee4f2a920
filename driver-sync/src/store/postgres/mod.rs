//! The PostgreSQL store: the same records, logs, flight recorder and checksums as the SQLite
//! store, in one schema (namespace) of a PostgreSQL database, for an operator who runs
//! PostgreSQL already, and for a hot standby (`lease.rs`).
//!
//! # Guarantees
//!
//! - Every write ([`Store::commit`], [`Store::commit_many`], [`Store::append_event`],
//!   [`Store::commit_step`], [`Store::prune_recorder`]) is **one** PostgreSQL transaction, so
//!   it is all or nothing; with the server's default `synchronous_commit = on` it is durable
//!   (WAL flushed) when it returns `Ok`.
//! - Every write transaction first checks the store's lease (fencing token): after another
//!   process took the store over, every write fails with [`StoreError::Fenced`] and changes
//!   nothing.
//! - Every row carries the SQLite store's checksum (`checksum.rs`), verified on every read: a
//!   tampered row is [`StoreError::Corrupt`].
//! - The schema has a version (`schema.rs`); a newer one is refused with
//!   [`StoreError::FutureVersion`] before anything is written.
//!
//! - A lost connection (a restarted server, a dropped socket) is replaced, and the operation run
//!   again, for up to [`PostgresConfig::reconnect`] (`conn.rs`): a write first checks the
//!   fencing token again and resolves a `COMMIT` whose outcome it did not hear, so no step is
//!   lost or written twice.
//!
//! The connection is a `postgres::Client` (the synchronous client). The trait's reads take
//! `&self`, the client needs `&mut`: it sits in a `RefCell` (a store has one owner thread).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use contractcourt_core::action::{Batch, Record, RecordKey};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;
use postgres::Transaction;

use super::checksum::encode_start;
use super::{encode_event, Records, StepDigest, Store, StoreError};

mod conn;
mod lease;
mod rows;
mod schema;

use conn::{connect, Conn};
pub use lease::{LeaseWatch, DEFAULT_LEASE};
pub use schema::PG_SCHEMA_VERSION;

/// Where a PostgreSQL store lives and how its lease behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A libpq-style connection string (`host=/run/pg user=postgres dbname=cc`) or URL
    /// (`postgresql://user@host/db`).
    pub url: String,
    /// The schema (namespace) holding the store's tables: lower-case letters, digits and `_`.
    pub schema: String,
    /// How long the lease lasts without renewal: a standby takes over within this time.
    pub lease: Duration,
    /// How long a lost connection is tried again (with backoff) before an operation fails.
    pub reconnect: Duration,
}

/// How long a lost connection is tried again by default: a minute, long enough for a restart
/// or a replica's promotion (see `DESIGN.md`, "PostgreSQL store").
pub const DEFAULT_RECONNECT: Duration = Duration::from_secs(60);

impl PostgresConfig {
    /// `url`, schema `contractcourt`, the default lease ([`DEFAULT_LEASE`]).
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "contractcourt".into(),
            lease: DEFAULT_LEASE,
            reconnect: DEFAULT_RECONNECT,
        }
    }
}

/// A [`Store`] in a PostgreSQL schema (see the module documentation).
pub struct PostgresStore {
    /// The connection (replaced after it is lost) and its prepared statements.
    conn: RefCell<Conn>,
    config: PostgresConfig,
    /// The fencing token of the lease this store holds (`None`: opened read-only).
    token: Option<i64>,
    /// The owner's heartbeat, which bounds the renewer's renewals.
    watch: LeaseWatch,
    /// Renews the lease; releases it when dropped (declared after the client: dropped first).
    _renewer: Option<lease::Renewer>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.config.schema)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Open (creating or migrating) the store, taking its lease. A lease held by a live owner
    /// is [`StoreError::Locked`]; a newer schema is [`StoreError::FutureVersion`]; a schema
    /// that holds other tables is [`StoreError::NotAStore`]. Nothing is written in those cases.
    pub fn open(config: PostgresConfig) -> Result<Self, StoreError> {
        Self::open_inner(config, None)
    }

    /// As [`PostgresStore::open`], but a live lease is waited for (a hot standby): polls every
    /// `poll` until the owner's lease expires or is released, for at most `give_up` (`None`:
    /// forever), then takes it over (a new fencing token: the old owner's writes are refused
    /// from then on).
    pub fn open_standby(
        config: PostgresConfig,
        poll: Duration,
        give_up: Option<Duration>,
    ) -> Result<Self, StoreError> {
        Self::open_inner(config, Some((poll, give_up)))
    }

    /// Open an existing store to read it (`inspect`, `replay`) without its lease, while its
    /// owner runs. It must be at [`PG_SCHEMA_VERSION`] ([`StoreError::OutdatedVersion`],
    /// [`StoreError::FutureVersion`], [`StoreError::NotAStore`] otherwise); writes fail with
    /// [`StoreError::ReadOnly`].
    pub fn open_read_only(config: PostgresConfig) -> Result<Self, StoreError> {
        check_schema_name(&config.schema)?;
        let mut client = connect(&config.url, &config.schema)?;
        match schema::inspect(&mut client, &config.schema)? {
            0 => Err(StoreError::NotAStore {
                reason: format!("schema {} holds no store", config.schema),
            }),
            v if v > PG_SCHEMA_VERSION => Err(StoreError::FutureVersion {
                found: v,
                supported: PG_SCHEMA_VERSION,
            }),
            v if v < PG_SCHEMA_VERSION => Err(StoreError::OutdatedVersion {
                found: v,
                supported: PG_SCHEMA_VERSION,
            }),
            _ => Ok(PostgresStore {
                conn: RefCell::new(Conn {
                    stmts: rows::Statements::prepare(&mut client)?,
                    client,
                }),
                config,
                token: None,
                watch: LeaseWatch::new(),
                _renewer: None,
            }),
        }
    }

    fn open_inner(
        config: PostgresConfig,
        standby: Option<(Duration, Option<Duration>)>,
    ) -> Result<Self, StoreError> {
        check_schema_name(&config.schema)?;
        let mut client = connect(&config.url, &config.schema)?;
        let found = schema::inspect(&mut client, &config.schema)?;
        if found > PG_SCHEMA_VERSION {
            return Err(StoreError::FutureVersion {
                found,
                supported: PG_SCHEMA_VERSION,
            });
        }
        if found < PG_SCHEMA_VERSION {
            schema::migrate(&mut client, &config.schema, schema::MIGRATIONS)?;
        }
        let token = match standby {
            None => lease::try_take(&mut client, config.lease)?,
            Some((poll, give_up)) => lease::wait_take(&mut client, config.lease, poll, give_up)?,
        };
        let watch = LeaseWatch::new();
        let renewer = lease::Renewer::start(
            &config.url,
            &config.schema,
            token,
            config.lease,
            watch.clone(),
        );
        Ok(PostgresStore {
            conn: RefCell::new(Conn {
                stmts: rows::Statements::prepare(&mut client)?,
                client,
            }),
            config,
            token: Some(token),
            watch,
            _renewer: Some(renewer),
        })
    }

    /// The fencing token of this store's lease (each takeover increments it); `None` when
    /// opened read-only.
    pub fn token(&self) -> Option<i64> {
        self.token
    }

    /// The owner's heartbeat: a handle for the owner's loop to say it is alive
    /// ([`LeaseWatch::beat`]) when it calls the store seldom. Every store call beats too; the
    /// lease is renewed up to a lease after the last beat, so a hung owner loses it.
    pub fn watch(&self) -> LeaseWatch {
        self.watch.clone()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// Run `f` in one write transaction that first checks (and extends) the lease; commit if
    /// it returns `Ok`, roll back otherwise. After a lost connection the whole transaction is
    /// run again on a new one (`conn.rs`): `f` must resolve an attempt whose `COMMIT` may have
    /// landed (see [`PostgresStore::append`]) or be idempotent.
    fn write<T>(
        &mut self,
        context: &'static str,
        mut f: impl FnMut(&mut Transaction<'_>, &rows::Statements) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (Some(token), lease) = (self.token, self.config.lease) else {
            return Err(StoreError::ReadOnly);
        };
        let watch = &self.watch;
        let written = conn::retrying(self.conn.get_mut(), &self.config, |c| {
            watch.beat();
            let mut tx = c.client.transaction().map_err(pg(context))?;
            lease::fence(&mut tx, &c.stmts, token, lease)?;
            let out = f(&mut tx, &c.stmts)?;
            tx.commit().map_err(pg(context))?;
            Ok(out)
        });
        if matches!(written, Err(StoreError::Fenced { .. })) {
            watch.set_fenced();
        }
        written
    }

    /// A write that appends event `json` (with its step digest and batches, if any) as the next
    /// event, exactly once: an attempt remembers the number it used, and the next attempt
    /// (after a lost connection) first reads that event back — there with this attempt's
    /// checksum, the lost `COMMIT` had landed, and its number is the answer. Under the fencing
    /// token no other process wrote that number meanwhile.
    fn append(
        &mut self,
        context: &'static str,
        json: &str,
        step: Option<&StepDigest>,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        let tried: Cell<Option<u64>> = Cell::new(None);
        self.write(context, |tx, st| {
            if let Some(seq) = tried.get() {
                if rows::event_landed(tx, seq, json)? {
                    return Ok(seq);
                }
            }
            let seq = rows::next_event(tx, st)?;
            tried.set(Some(seq));
            rows::insert_event(tx, st, seq, json, step)?;
            for op in batches.iter().flat_map(|b| &b.ops) {
                rows::apply(tx, st, op)?;
            }
            Ok(seq)
        })
    }

    /// Run the read `f`, on a new connection again after a lost one (`conn.rs`).
    fn read<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        conn::retrying(&mut self.conn.borrow_mut(), &self.config, |c| {
            self.watch.beat();
            f(c)
        })
    }
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Records, StoreError> {
        self.read(|c| rows::read_records(&mut c.client))
    }

    fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError> {
        self.read(|c| rows::read_channel_records(&mut c.client, &c.stmts, &channel))
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.commit_many(std::slice::from_ref(batch))
    }

    /// All batches in one transaction.
    fn commit_many(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        self.write("committing a batch", |tx, st| {
            for op in batches.iter().flat_map(|b| &b.ops) {
                rows::apply(tx, st, op)?;
            }
            Ok(())
        })
    }

    fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError> {
        self.read(|c| rows::read_log_entry(&mut c.client, &c.stmts, &channel, seq))
    }

    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
        let json = encode_event(event)?;
        self.append("recording an event", &json, None, &[])
    }

    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        self.read(|c| rows::read_events(&mut c.client, from_seq, limit))
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        self.read(|c| rows::next_event(&mut c.client, &c.stmts))
    }

    fn commit_step(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        let json = encode_event(event)?;
        self.append("committing a step", &json, Some(step), batches)
    }

    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StepDigest)>, StoreError> {
        self.read(|c| rows::read_digests(&mut c.client, from_seq, limit))
    }

    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
        let seq = i64::try_from(keep_from).map_err(|_| StoreError::OutOfRange {
            what: "event sequence number",
            value: keep_from,
        })?;
        let json = encode_start(start)?;
        self.write("pruning the flight recorder", |tx, st| {
            let next = rows::next_event(tx, st)?;
            if keep_from > next || keep_from < rows::first_kept(tx)? {
                return Err(StoreError::OutOfRange {
                    what: "replay start",
                    value: keep_from,
                });
            }
            rows::prune(tx, seq, &json)
        })
    }

    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
        self.read(|c| rows::read_start(&mut c.client))
    }
}

/// A schema name the store accepts: 1 to 63 of `a-z`, `0-9`, `_`, not starting with a digit.
fn check_schema_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Encode {
            what: "schema name",
            reason: format!("{name:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit"),
        })
    }
}

/// A checked schema name as an SQL identifier.
fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// Wrap a PostgreSQL error (a connection, SQL or server error: the message kept whole).
fn pg(context: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |e| StoreError::Backend {
        backend: "postgres",
        context,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lower_case_schema_names_are_accepted() {
        for good in ["contractcourt", "node_1", "_x", &"a".repeat(63)] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1node", "Node", "a-b", "a\"b", "a b", &"a".repeat(64)] {
            assert!(
                matches!(
                    check_schema_name(bad),
                    Err(StoreError::Encode {
                        what: "schema name",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
