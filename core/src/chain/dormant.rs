//! Channels loaded lazily. A restart does not need every channel decoded: a quiet open channel —
//! no close, no force close, no resolver, nothing in flight — only needs its funding outpoints
//! watched, its incoming payment hashes known, the earliest height at which an HTLC deadline
//! could fire and, for anchor channels, its fee exposure. That is a [`DormantChannel`], read from
//! the channel's records without decoding their keys or signatures (most of a restart's cost).
//!
//! A dormant channel is indexed exactly as a decoded one for outpoints, payment hashes and
//! exposure, and with a wake-up at or before the decoded one's (every HTLC counted, incoming ones
//! as if their preimage were known). Before a step, [`ChainArbitrator::dormant_needed`] names the
//! dormant channels the event may change — a channel update or force close of it, a spend of its
//! funding output in a block or the mempool, its wake-up reached (by the block, or already by
//! the tip whatever the event), a preimage of one of its incoming HTLCs — and the step refuses the event ([`StepError::NotLoaded`]) until they are
//! given back whole by [`ChainArbitrator::hydrate`]. Every other event leaves a quiet open
//! channel as it is, so the engine answers every event as it would with every channel decoded.

use std::collections::BTreeSet;

use bitcoin::hashes::{sha256, Hash};

use crate::bolt3::PaymentHash;
use crate::event::Event;
use crate::types::{ChannelId, Height};

use super::records::{decode_channel, ChannelRecords, LoadError};
use super::{ChainArbitrator, StepError};

impl ChainArbitrator {
    /// The dormant channels `event` may change, in id order: the step refuses the event
    /// ([`StepError::NotLoaded`]) until each is given whole to [`ChainArbitrator::hydrate`].
    /// Empty when no channel is dormant.
    pub fn dormant_needed(&self, event: &Event) -> Vec<ChannelId> {
        if self.dormant.is_empty() {
            return Vec::new();
        }
        // Whatever the event, a dormant channel whose wake-up the tip has reached (after a
        // restart: `Resumed` is the first event fed) is decoded before it.
        let mut ids: BTreeSet<ChannelId> = match self.tip {
            Some(tip) => self.dormant_due(tip.height).collect(),
            None => BTreeSet::new(),
        };
        match event {
            Event::ChannelUpdate(u) => {
                ids.insert(u.channel);
            }
            Event::ForceCloseRequested { channel, .. } | Event::RevokedLogRead { channel, .. } => {
                ids.insert(*channel);
            }
            Event::PreimageLearned { preimage, .. } => {
                ids.extend(self.index.hashes.values(&preimage.payment_hash()));
            }
            Event::BlockConnected(block) => {
                for tx in &block.txs {
                    self.spent_by(tx, &mut ids);
                }
                ids.extend(self.dormant_due(block.height));
            }
            Event::MempoolTx { tx, .. } => self.spent_by(tx, &mut ids),
            _ => {}
        }
        ids.into_iter()
            .filter(|id| self.dormant.contains_key(id))
            .collect()
    }

    /// The channels whose watched outputs `tx` spends and, if it spends any, those with an
    /// incoming HTLC whose preimage may be in its witnesses (any 32-byte item).
    fn spent_by(&self, tx: &bitcoin::Transaction, ids: &mut BTreeSet<ChannelId>) {
        let spent: Vec<ChannelId> = tx
            .input
            .iter()
            .filter_map(|i| self.index.outpoints.get(&i.previous_output))
            .collect();
        if spent.is_empty() {
            return;
        }
        ids.extend(spent);
        let hashes = tx
            .input
            .iter()
            .flat_map(|i| i.witness.iter())
            .filter(|item| item.len() == 32)
            .map(|item| PaymentHash(sha256::Hash::hash(item).to_byte_array()));
        for hash in hashes {
            ids.extend(self.index.hashes.values(&hash));
        }
    }

    /// The dormant channels whose wake-up is at or below `height`.
    fn dormant_due(&self, height: Height) -> impl Iterator<Item = ChannelId> + '_ {
        self.index
            .wakeups
            .range(..=(height, ChannelId([0xff; 32])))
            .map(|(_, id)| *id)
            .filter(|id| self.dormant.contains_key(id))
    }

    /// Give a dormant channel back whole, from its records as the store holds them: decoded
    /// ([`decode_channel`]) and indexed as a decoded channel. A channel that is not dormant is
    /// left as it is. On `Err` nothing changed.
    pub fn hydrate(&mut self, records: &ChannelRecords) -> Result<(), LoadError> {
        let id = records.id;
        if !self.dormant.contains_key(&id) {
            return Ok(());
        }
        let decoded = decode_channel(records)?;
        self.dormant.remove(&id);
        self.persisted.extend(decoded.digests);
        self.channels.insert(id, decoded.channel);
        self.reindex(id);
        Ok(())
    }

    /// Whether a channel is dormant (known, not decoded yet).
    pub fn is_dormant(&self, id: &ChannelId) -> bool {
        self.dormant.contains_key(id)
    }

    /// How many channels are dormant.
    pub fn dormant_count(&self) -> usize {
        self.dormant.len()
    }

    /// The dormant channels, in id order.
    pub fn dormant_ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.dormant.keys().copied()
    }

    /// Refuse an event that may change a dormant channel (the first check of a step).
    pub(super) fn check_loaded(&self, event: &Event) -> Result<(), StepError> {
        let needed = self.dormant_needed(event);
        if needed.is_empty() {
            Ok(())
        } else {
            Err(StepError::NotLoaded(needed))
        }
    }
}
