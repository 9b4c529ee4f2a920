//! The in-memory store, for tests: the same rules as the SQLite store, no durability.

use std::collections::BTreeMap;

use contractcourt_core::action::{Batch, Record, RecordOp};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;

use super::{decode_event, encode_event, Records, Store, StoreError};

/// A [`Store`] held in memory: the same all-or-nothing rules as [`super::SqliteStore`], no
/// durability. Events are kept as their JSON encoding, as on disk, so an event that does not
/// survive a round trip through its stored form shows up in tests too.
///
/// `Clone` takes a snapshot: a test can "crash" by dropping a store and continuing from a clone.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: Records,
    logs: BTreeMap<(ChannelId, u64), Record>,
    events: Vec<String>,
    fail_next_commit: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make the next [`Store::commit`] (or [`Store::commit_many`]) fail with
    /// [`StoreError::Injected`], changing nothing, even if its batch is empty. Later commits
    /// succeed again. For testing a driver's "commit failed: run nothing, reload" path.
    pub fn fail_next_commit(&mut self) {
        self.fail_next_commit = true;
    }

    /// How many entries all the append-only logs hold together.
    pub fn log_len(&self) -> usize {
        self.logs.len()
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Records, StoreError> {
        Ok(self.records.clone())
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if std::mem::take(&mut self.fail_next_commit) {
            return Err(StoreError::Injected);
        }
        // Check every append first (against the log and the batch's earlier appends), so that a
        // refused batch changes nothing; puts and deletes cannot fail.
        let mut pending: BTreeMap<(ChannelId, u64), &Record> = BTreeMap::new();
        for op in &batch.ops {
            if let RecordOp::Append {
                channel,
                seq,
                record,
            } = op
            {
                let key = (*channel, *seq);
                let existing = pending.get(&key).copied().or_else(|| self.logs.get(&key));
                match existing {
                    Some(old) if old != record => {
                        return Err(StoreError::LogConflict {
                            channel: *channel,
                            seq: *seq,
                        })
                    }
                    Some(_) => {}
                    None => {
                        pending.insert(key, record);
                    }
                }
            }
        }
        for op in &batch.ops {
            match op {
                RecordOp::Put { key, record } => {
                    self.records.insert(key.clone(), record.clone());
                }
                RecordOp::Delete { key } => {
                    self.records.remove(key);
                }
                RecordOp::Append {
                    channel,
                    seq,
                    record,
                } => {
                    self.logs
                        .entry((*channel, *seq))
                        .or_insert_with(|| record.clone());
                }
            }
        }
        Ok(())
    }

    fn read_log(&self, channel: ChannelId, seq: u64) -> Result<Option<Record>, StoreError> {
        Ok(self.logs.get(&(channel, seq)).cloned())
    }

    fn append_event(&mut self, event: &Event) -> Result<u64, StoreError> {
        let json = encode_event(event)?;
        let seq = self.events.len() as u64;
        self.events.push(json);
        Ok(seq)
    }

    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        let Ok(start) = usize::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        self.events
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(i, json)| {
                let seq = i as u64;
                decode_event(seq, json).map(|e| (seq, e))
            })
            .collect()
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        Ok(self.events.len() as u64)
    }
}
