//! The in-memory store, for tests: the same rules as the SQLite store, no durability.

use std::collections::BTreeMap;

use contractcourt_core::action::{Batch, Record, RecordKey, RecordOp};
use contractcourt_core::event::Event;
use contractcourt_core::types::ChannelId;

use super::{decode_event, encode_event, record_channel, Records, StepDigest, Store, StoreError};

/// A [`Store`] held in memory: the same all-or-nothing rules as [`super::SqliteStore`], no
/// durability. Events are kept as their JSON encoding, as on disk, so an event that does not
/// survive a round trip through its stored form shows up in tests too.
///
/// `Clone` takes a snapshot: a test can "crash" by dropping a store and continuing from a clone.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: Records,
    logs: BTreeMap<(ChannelId, u64), Record>,
    /// The kept events: `events[i]` is event `first + i`.
    events: Vec<String>,
    first: u64,
    start: Option<(u64, Records)>,
    digests: BTreeMap<u64, StepDigest>,
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

    /// Record an encoded event; its sequence number.
    fn append_event_json(&mut self, json: String) -> u64 {
        let seq = self.first + self.events.len() as u64;
        self.events.push(json);
        seq
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

    /// A pass over the records (this store is for tests: no index to keep).
    fn load_channel(&self, channel: ChannelId) -> Result<Vec<(RecordKey, Record)>, StoreError> {
        Ok(self
            .records
            .iter()
            .filter(|(key, _)| record_channel(key) == Some(channel))
            .map(|(key, record)| (key.clone(), record.clone()))
            .collect())
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
        Ok(self.append_event_json(json))
    }

    fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        let from = from_seq.max(self.first);
        let Ok(skip) = usize::try_from(from - self.first) else {
            return Ok(Vec::new());
        };
        self.events
            .iter()
            .enumerate()
            .skip(skip)
            .take(limit)
            .map(|(i, json)| {
                let seq = self.first + i as u64;
                decode_event(seq, json).map(|e| (seq, e))
            })
            .collect()
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        Ok(self.first + self.events.len() as u64)
    }

    fn prune_recorder(&mut self, keep_from: u64, start: &Records) -> Result<(), StoreError> {
        let next = self.first + self.events.len() as u64;
        if keep_from > next || keep_from < self.first {
            return Err(StoreError::OutOfRange {
                what: "replay start",
                value: keep_from,
            });
        }
        // keep_from - first <= events.len(), a usize.
        self.events.drain(..(keep_from - self.first) as usize);
        self.first = keep_from;
        self.digests = self.digests.split_off(&keep_from);
        self.start = Some((keep_from, start.clone()));
        Ok(())
    }

    fn replay_start(&self) -> Result<Option<(u64, Records)>, StoreError> {
        Ok(self.start.clone())
    }

    /// The batches first (all or nothing, [`MemoryStore::fail_next_commit`] included), then
    /// the event and its digest: on `Err` nothing changed.
    fn commit_step(
        &mut self,
        event: &Event,
        step: &StepDigest,
        batches: &[&Batch],
    ) -> Result<u64, StoreError> {
        let json = encode_event(event)?;
        let ops: Vec<_> = batches.iter().flat_map(|b| b.ops.iter().cloned()).collect();
        // As a driver committed before: a step without records makes no commit, so an injected
        // failure waits for a step that has some.
        if !ops.is_empty() {
            self.commit(&Batch { ops })?;
        }
        let seq = self.append_event_json(json);
        self.digests.insert(seq, *step);
        Ok(seq)
    }

    fn step_digests(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StepDigest)>, StoreError> {
        Ok(self
            .digests
            .range(from_seq..)
            .take(limit)
            .map(|(s, d)| (*s, *d))
            .collect())
    }
}
