//! Durable storage of the core's records, and the flight recorder.
//!
//! The core returns one atomic [`Batch`] of keyed records per step (`Action::Persist`); a driver
//! commits it with [`Store::commit`] *before* it runs any effect of the step, and if the commit
//! fails it runs nothing and reloads with [`Store::load`] (`DESIGN.md`, "Persistence" and "Driver
//! contract"). Three kinds of data live in a store:
//!
//! - **keyed records** ([`RecordKey`] → [`Record`]): the current state, replaced by
//!   [`RecordOp::Put`](contractcourt_core::action::RecordOp::Put) and removed by
//!   [`RecordOp::Delete`](contractcourt_core::action::RecordOp::Delete); [`Store::load`] returns
//!   all of them.
//! - **append-only per-channel logs**
//!   ([`RecordOp::Append`](contractcourt_core::action::RecordOp::Append)): the HTLC data of revoked
//!   commitments, needed only to build justice transactions. They are never loaded as a whole:
//!   [`Store::read_log`] reads one entry by (channel, sequence number).
//! - **the flight recorder**: every event a driver feeds to the core, in feed order, numbered
//!   densely from 0 ([`Store::append_event`], [`Store::events`]), so an incident replays bit for
//!   bit. After a prune ([`Store::prune_recorder`]) the kept events are numbered densely from
//!   the replay start ([`Store::replay_start`]) on, with the numbers they always had; the
//!   numbers below it are gone, and replay begins from the records stored with the start. A driver records each event in its step's own commit ([`Store::commit_step`]: the
//!   event, the [`StepDigest`] of the actions the step produced and the step's batches in one
//!   atomic, durable write — one sync per step), and records a connected block as the core's
//!   `ChainArbitrator::recordable` keeps it: the header and only the transactions the engine's
//!   index could route. Replaying the reduced block from the same state gives the same actions.
//!
//! Durability of the recorder: when [`Store::commit_step`] returns `Ok`, the event, its digest
//! and the step's records are durable together; on `Err` none of them is (the event is not
//! numbered, the records are unchanged). A crash between a step and its commit loses that step
//! entirely — the same as the old order (event appended, then batch committed) when the crash
//! fell before the append; a recorded event whose step's records were lost can no longer happen.
//!
//! Three implementations: [`SqliteStore`], the embedded default (WAL, `synchronous=FULL`, schema
//! version and migrations, a SHA256 checksum on every stored row, verified on every read),
//! [`PostgresStore`] (the same rows and checksums in a PostgreSQL schema, with a fenced lease
//! for a hot standby), and [`MemoryStore`] for tests (with [`MemoryStore::fail_next_commit`] to
//! exercise a driver's "commit failed" path). All pass the same behaviour tests, the public kit
//! [`conformance`] (a backend's own tests instantiate it with
//! [`store_conformance_tests!`](crate::store_conformance_tests)).
//!
//! The trait is synchronous. An async driver calls it from a blocking thread (e.g. tokio's
//! `spawn_blocking` or a dedicated thread owning the store), never from an async worker.

use std::collections::BTreeMap;
use std::fmt;

use contractcourt_core::action::{Batch, Record, RecordKey};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;

mod checksum;
mod memory;
mod owner;
mod postgres;
mod sqlite;

pub use memory::MemoryStore;
pub use owner::lock_path;
pub use postgres::{
    LeaseWatch, PostgresConfig, PostgresStore, DEFAULT_LEASE, DEFAULT_RECONNECT, PG_SCHEMA_VERSION,
};
pub use sqlite::{SqliteStore, VerifyReport, APPLICATION_ID, SCHEMA_VERSION};

pub mod conformance;
pub mod recorder_conformance;

/// SHA256 over the JSON of every action a step produced, in order (see
/// `driver::actions_digest`): what a replay compares to tell whether a build reproduces a step.
pub type StepDigest = [u8; 32];

/// Every current keyed record of a store, in [`RecordKey`] order.
pub type Records = BTreeMap<RecordKey, Record>;

/// Durable storage for one engine: keyed records, append-only per-channel logs and the flight
/// recorder of events.
///
/// A store has a single owner (`&mut self` for every write). Reads never change anything.
/// Every read of stored data verifies it: a record, log entry or event whose checksum or
/// encoding is wrong is [`StoreError::Corrupt`], never a guess.
///
/// Durability ("durable" below): once a write method returns `Ok`, what it wrote survives a crash
/// of the process and, for [`SqliteStore`] on a disk that honours `fsync`, a power loss. When it
/// returns `Err`, nothing of what it was asked to write is visible, now or after a restart.
/// [`MemoryStore`] keeps the same all-or-nothing rules but is not durable at all.
pub trait Store: Send {
    /// Every current keyed record, not the append-only logs and not the events.
    ///
    /// Reads only; verifies every record it returns. A driver calls it at start and after a
    /// failed commit.
    fn load(&self) -> Result<Records, StoreError>;

    /// Every current keyed record of one channel — its header (`RecordKey::Channel`), its
    /// commitments (`RecordKey::Commitment`) and its resolvers (`RecordKey::Resolver`) — in
    /// `RecordKey` order, each verified as `load` verifies it; empty if the store has none.
    /// Reads only that channel's rows (an index lookup), however many channels the store holds.
    ///
    /// For a driver that loads a channel lazily, on first touch. The result equals the part of
    /// [`Store::load`] whose keys name `channel`; it reads only and leaves whatever `load`
    /// would return unchanged.
    fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError>;

    /// Apply one batch atomically: its operations in order, all of them or none.
    ///
    /// On `Ok` the whole batch is durable. On `Err` nothing of it is visible (for example when an
    /// [`RecordOp::Append`](contractcourt_core::action::RecordOp::Append) names an existing log
    /// entry with different content: [`StoreError::LogConflict`]); the driver must run none of the
    /// step's effects and reload. Appending an entry that already exists with the *same* content
    /// is a no-op, so re-applying a batch after a crash is harmless.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;

    /// Apply several batches, in order, as **one** atomic group: all of them or none.
    ///
    /// For benchmarks and for replaying a history, where one durable write per batch would
    /// dominate. A live driver must not use it to delay a step's commit past that step's
    /// effects: the driver contract still requires each step's batch to be durable before the
    /// step's effects run. Same guarantees as [`Store::commit`], for the group as a whole.
    fn commit_many(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        let ops = batches.iter().flat_map(|b| b.ops.iter().cloned()).collect();
        self.commit(&Batch { ops })
    }

    /// One entry of a channel's append-only log, or `None` if there is none at `seq`.
    ///
    /// Reads that one entry only (a point lookup), however long the log is.
    fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError>;

    /// Record an event fed to the core (the flight recorder) and return its sequence number:
    /// the number of events recorded before it (the first is 0).
    ///
    /// On `Ok` the event is durable; on `Err` it was not recorded and the count is unchanged.
    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError>;

    /// Recorded events with sequence numbers from `from_seq` on, in feed order, at most `limit`
    /// of them (fewer at the end of the recording; none past it).
    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError>;

    /// How many events were ever recorded (pruned ones included); also the sequence number the
    /// next one will get.
    fn event_count(&self) -> Result<u64, StoreError>;

    /// Commit one step: record `event` (as the recorder keeps it) with the digest of the
    /// step's actions, and apply the step's `batches` in order, as **one** atomic, durable
    /// write. Returns the event's sequence number. On `Err` nothing of it is visible: the
    /// event is not recorded, no record changed (e.g. [`StoreError::LogConflict`]).
    fn commit_step(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError>;

    /// The step digests recorded for events from `from_seq` on, in order, at most `limit` of
    /// them. An event recorded without one ([`Store::append_event`], or by a store written
    /// before digests) has none: its number is missing from the list.
    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StepDigest)>, StoreError>;

    /// Make event `keep_from` the first the recorder keeps: store `start` (the keyed records as
    /// they were before that event) as the state replay begins from, and delete every event and
    /// step digest numbered below it, as one atomic, durable write. Numbering is unchanged:
    /// [`Store::event_count`] is still the next event's number, and [`Store::events`] returns
    /// kept events only (from `keep_from` on). `keep_from` past the next number, or before the
    /// current start, is [`StoreError::OutOfRange`] and changes nothing.
    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError>;

    /// Where replay begins: the first kept event's number and the records as they were before
    /// it; `None` if the recorder was never pruned (replay from event 0 and an empty engine).
    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn load(&self) -> Result<Records, StoreError> {
        (**self).load()
    }
    fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError> {
        (**self).load_channel(channel)
    }
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        (**self).commit(batch)
    }
    fn commit_many(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        (**self).commit_many(batches)
    }
    fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError> {
        (**self).read_log(channel, seq)
    }
    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
        (**self).append_event(event)
    }
    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        (**self).events(from_seq, limit)
    }
    fn event_count(&self) -> Result<u64, StoreError> {
        (**self).event_count()
    }
    fn commit_step(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        (**self).commit_step(event, step, batches)
    }
    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StepDigest)>, StoreError> {
        (**self).step_digests(from_seq, limit)
    }
    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
        (**self).prune_recorder(keep_from, start)
    }
    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
        (**self).replay_start()
    }
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// The database backend reported an error.
    Backend {
        /// Which backend (`"sqlite"`, `"postgres"`).
        backend: &'static str,
        /// What the store was doing.
        context: &'static str,
        /// The backend's error, message intact.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process took over this store's lease (PostgreSQL hot standby): this store may no
    /// longer write, and nothing of the refused write is visible. See `postgres/lease.rs`.
    Fenced {
        /// The fencing token this store holds.
        held: i64,
        /// The token now in the lease (the new owner's), if there is one.
        current: Option<i64>,
    },
    /// The file is not a contractcourt store (another application's SQLite database, or not a
    /// SQLite database at all). Nothing was written to it.
    NotAStore {
        /// What gave it away.
        reason: String,
    },
    /// The database was written by a newer version of this program. Nothing was written to it.
    FutureVersion {
        /// The database's schema version.
        found: u32,
        /// The newest schema version this program knows.
        supported: u32,
    },
    /// The database has an older schema and was opened read-only, so it cannot be migrated.
    OutdatedVersion {
        /// The database's schema version.
        found: u32,
        /// The schema version this program needs.
        supported: u32,
    },
    /// Stored data failed its checksum or could not be decoded. At open this refuses the whole
    /// database, before the engine acts on any of it.
    Corrupt {
        /// What kind of data ("record", "log entry", "event", "schema", "database file").
        what: &'static str,
        /// Which one (a record key, `channel/seq`, an event sequence number).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An append names a log entry that already exists with different content.
    LogConflict {
        /// The channel whose log it is.
        channel: ChannelId,
        /// The entry's sequence number.
        seq: u64,
    },
    /// A value could not be encoded for storage.
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// A number does not fit the store's representation.
    OutOfRange {
        /// What the number is.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// Another process holds the database (only one engine may own a store).
    Locked {
        /// SQLite's message.
        reason: String,
    },
    /// The store's lock file (`PATH.lock`) could not be opened or locked.
    LockFile {
        /// The lock file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store was opened read-only.
    ReadOnly,
    /// A failure injected by [`MemoryStore::fail_next_commit`] (tests only).
    Injected,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Backend {
                backend,
                context,
                source,
            } => {
                write!(f, "{backend} error while {context}: {source}")
            }
            StoreError::Fenced { held, current } => match current {
                Some(current) => write!(
                    f,
                    "fenced: this store's lease (token {held}) was taken over (token {current}); \
                     nothing was written"
                ),
                None => write!(
                    f,
                    "fenced: this store's lease (token {held}) is gone; nothing was written"
                ),
            },
            StoreError::NotAStore { reason } => {
                write!(f, "not a contractcourt store: {reason}")
            }
            StoreError::FutureVersion { found, supported } => write!(
                f,
                "store schema version {found} is newer than this program supports \
                 (up to {supported}); nothing was changed"
            ),
            StoreError::OutdatedVersion { found, supported } => write!(
                f,
                "store schema version {found} is older than {supported} and the store is \
                 read-only, so it cannot be migrated"
            ),
            StoreError::Corrupt { what, key, reason } if key.is_empty() => {
                write!(f, "corrupt {what}: {reason}")
            }
            StoreError::Corrupt { what, key, reason } => {
                write!(f, "corrupt {what} {key}: {reason}")
            }
            StoreError::LogConflict { channel, seq } => write!(
                f,
                "log entry {seq} of channel {channel} already exists with different content"
            ),
            StoreError::Encode { what, reason } => write!(f, "cannot encode {what}: {reason}"),
            StoreError::OutOfRange { what, value } => {
                write!(f, "{what} {value} is out of the store's range")
            }
            StoreError::Locked { reason } => {
                write!(f, "store is in use by another process: {reason}")
            }
            StoreError::LockFile { path, source } => {
                write!(f, "the store's lock file {path}: {source}")
            }
            StoreError::ReadOnly => f.write_str("store is open read-only"),
            StoreError::Injected => f.write_str("injected commit failure"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Backend { source, .. } => Some(&**source),
            StoreError::LockFile { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The stored form of a record key: its canonical JSON (injective: distinct keys never share
/// one, unlike the human-readable `Display` path).
pub(crate) fn encode_key(key: &RecordKey) -> Result<String, StoreError> {
    serde_json::to_string(key).map_err(|e| StoreError::Encode {
        what: "record key",
        reason: e.to_string(),
    })
}

/// The channel whose own record `key` is — its header, one of its commitments or one of its
/// resolvers — or `None` for a node-level key (circuits and upstream settles name a channel's
/// HTLC but are node-level). What [`Store::load_channel`] selects.
pub(crate) fn record_channel(key: &RecordKey) -> Option<ChannelId> {
    match key {
        RecordKey::Channel { channel }
        | RecordKey::Commitment { channel, .. }
        | RecordKey::Resolver { channel, .. } => Some(*channel),
        RecordKey::Node
        | RecordKey::Claim { .. }
        | RecordKey::Preimage { .. }
        | RecordKey::Circuit { .. }
        | RecordKey::Upstream { .. }
        | RecordKey::Block { .. } => None,
    }
}

/// How the SQL stores find one channel's rows by their `path` column (the key's `Display`):
/// `[header, from, to]`, the header's path `channel/<hex>` and the half-open range
/// `[channel/<hex>/, channel/<hex>0)`, which holds, in bytewise order, exactly the paths that
/// start with `channel/<hex>/` (`'0'` is the byte after `'/'`): the channel's commitments and
/// resolvers, and no other channel's rows even when two ids differ only in their last digit.
pub(crate) fn channel_paths(channel: &ChannelId) -> [String; 3] {
    let header = RecordKey::Channel { channel: *channel }.to_string();
    let from = format!("{header}/");
    let to = format!("{header}0");
    [header, from, to]
}

/// Check that a row a SQL store found by its path under `channel` holds a record of that
/// channel: its `path` (covered by its checksum) named the channel, so a key that does not is
/// a row whose path and key disagree, [`StoreError::Corrupt`], never another channel's record
/// handed out as this one's.
pub(crate) fn check_channel_row(
    channel: &ChannelId,
    key: &RecordKey,
    path: &str,
) -> Result<(), StoreError> {
    if record_channel(key) == Some(*channel) {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            what: "record",
            key: path.to_string(),
            reason: format!("its path names channel {channel} but its key is {key}"),
        })
    }
}

/// The stored form of an event.
pub(crate) fn encode_event(event: &Event) -> Result<String, StoreError> {
    serde_json::to_string(event).map_err(|e| StoreError::Encode {
        what: "event",
        reason: e.to_string(),
    })
}

/// Decode a stored event.
pub(crate) fn decode_event(seq: u64, json: &str) -> Result<Event, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        what: "event",
        key: seq.to_string(),
        reason: format!("undecodable: {e}"),
    })
}
