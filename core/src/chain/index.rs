//! The indexes that route events to channels without scanning them: watched outpoints, closes,
//! claims, payment hashes, wake-up heights; refreshed one channel at a time.

use crate::bolt3::PaymentHash;
use crate::types::{ChannelId, ClaimId, Height, HtlcDirection, HtlcKey};
use bitcoin::OutPoint;
use std::collections::{BTreeMap, BTreeSet};

use super::{exposure, fee_context, outpoints, ChainArbitrator};
use crate::channel::ChannelArbitrator;
use crate::sweeper::step::SweeperInput;

/// Indexes derived from the channels (rebuilt on load, never persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Index {
    pub(super) outpoints: outpoints::OutpointIndex,
    pub(super) wakeups: BTreeSet<(Height, ChannelId)>,
    pub(super) wakeup_of: BTreeMap<ChannelId, Height>,
    /// Channels that act on every block (rebroadcasting our commitment).
    pub(super) every_block: BTreeSet<ChannelId>,
    pub(super) claims: BTreeMap<ClaimId, ChannelId>,
    /// Commitments seen in the mempool, by txid.
    pub(super) mempool: BTreeMap<bitcoin::Txid, ChannelId>,
    /// Confirmed closes, by txid: a spend of an output no resolver watches (an HTLC of a
    /// future commitment) is still searched for preimages.
    pub(super) closes: BTreeMap<bitcoin::Txid, ChannelId>,
    /// Channels with an incoming HTLC of a payment hash, on a live commitment or on the
    /// confirmed close: the channels a preimage concerns.
    pub(super) hashes: PairIndex<PaymentHash, ChannelId>,
    /// The outgoing HTLCs forwarded from each incoming HTLC (the circuits, reversed): the
    /// channels an upstream decision concerns.
    pub(super) forwarded: PairIndex<HtlcKey, HtlcKey>,
    /// The incoming HTLC of each circuit as indexed in `forwarded`.
    pub(super) leg_of: BTreeMap<HtlcKey, HtlcKey>,
    /// Channels that had a spend routed at a height (for disconnections).
    pub(super) touched_at: BTreeMap<Height, BTreeSet<ChannelId>>,
    /// What was indexed for each channel, so it can be removed without scanning.
    pub(super) of_channel: BTreeMap<ChannelId, Indexed>,
    /// The outpoints each channel has a sweeper claim for (spent ones included).
    pub(super) swept: BTreeMap<ChannelId, BTreeSet<OutPoint>>,
    /// What the open anchor channels may need from the fee wallet.
    pub(super) exposure: exposure::ExposureIndex,
}

/// A one-to-many relation as one set of pairs: a key with one value costs one entry, where a set
/// per key would cost a tree node of its own (measured: 475 bytes per pair with a set per key,
/// 122 with one set of pairs, for 500,000 distinct keys). Every HTLC of a node has its own
/// payment hash and every forwarded HTLC its own circuit, so most keys have one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PairIndex<K, V>(BTreeSet<(K, V)>);

impl<K, V> Default for PairIndex<K, V> {
    fn default() -> Self {
        PairIndex(BTreeSet::new())
    }
}

/// The least and the greatest value of a type, to range over one key's values.
pub(super) trait Bounded: Sized {
    const LEAST: Self;
    const GREATEST: Self;
}

impl Bounded for ChannelId {
    const LEAST: Self = ChannelId([0; 32]);
    const GREATEST: Self = ChannelId([0xff; 32]);
}

impl Bounded for HtlcKey {
    const LEAST: Self = HtlcKey {
        channel: ChannelId::LEAST,
        htlc_id: 0,
        direction: HtlcDirection::Incoming,
    };
    const GREATEST: Self = HtlcKey {
        channel: ChannelId::GREATEST,
        htlc_id: u64::MAX,
        direction: HtlcDirection::Outgoing,
    };
}

impl<K: Ord + Copy, V: Ord + Copy + Bounded> PairIndex<K, V> {
    pub(super) fn insert(&mut self, key: K, value: V) {
        self.0.insert((key, value));
    }

    pub(super) fn remove(&mut self, key: K, value: V) {
        self.0.remove(&(key, value));
    }

    /// The values of `key`, in order.
    pub(super) fn values(&self, key: &K) -> impl Iterator<Item = V> + '_ {
        self.0
            .range((*key, V::LEAST)..=(*key, V::GREATEST))
            .map(|(_, v)| *v)
    }
}

/// One channel's entries in the [`Index`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Indexed {
    pub(super) outpoints: Vec<OutPoint>,
    pub(super) mempool: Option<bitcoin::Txid>,
    pub(super) close: Option<bitcoin::Txid>,
    pub(super) claims: Vec<ClaimId>,
    pub(super) hashes: Vec<PaymentHash>,
    pub(super) heights: Vec<Height>,
}

impl Index {
    /// Remove exactly what was indexed for channel `id` last time: the cost is the channel's
    /// own size, never the number of channels.
    fn remove(&mut self, id: ChannelId) {
        if let Some(old) = self.of_channel.remove(&id) {
            for o in &old.outpoints {
                if self.outpoints.get(o) == Some(id) {
                    self.outpoints.remove(o);
                }
            }
            for c in &old.claims {
                self.claims.remove(c);
            }
            if let Some(t) = &old.mempool {
                self.mempool.remove(t);
            }
            if let Some(t) = &old.close {
                self.closes.remove(t);
            }
            for h in &old.hashes {
                self.hashes.remove(*h, id);
            }
            for h in &old.heights {
                if let Some(set) = self.touched_at.get_mut(h) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.touched_at.remove(h);
                    }
                }
            }
        }
        self.every_block.remove(&id);
        if let Some(h) = self.wakeup_of.remove(&id) {
            self.wakeups.remove(&(h, id));
        }
    }

    /// Index channel `ch` (id `id`): its watched outputs, claims, close, mempool commitment,
    /// heights a disconnection must revisit, the payment hashes of its incoming HTLCs, and its
    /// wake-up.
    fn add(&mut self, id: ChannelId, ch: &ChannelArbitrator, wakeup: Option<Height>) {
        let mut entry = Indexed::default();
        for o in ch.watched_outpoints() {
            self.outpoints.insert(o, id);
            entry.outpoints.push(o);
        }
        let second_level = ch
            .resolvers
            .values()
            .filter_map(|r| r.second_level.as_ref())
            .map(|c| c.claim);
        let claims = ch
            .force_close
            .iter()
            .map(|fc| fc.claim)
            .chain(second_level)
            .chain(ch.cpfp.iter().map(|f| f.claim))
            .chain(ch.reorged_cooperative.iter().map(|r| r.claim));
        if let Some(c) = &ch.close {
            self.closes.insert(c.txid, id);
            entry.close = Some(c.txid);
        }
        if let Some(m) = &ch.mempool_commitment {
            let txid = m.tx.compute_txid();
            self.mempool.insert(txid, id);
            entry.mempool = Some(txid);
        }
        for claim in claims {
            self.claims.insert(claim, id);
            entry.claims.push(claim);
        }
        // Every height whose disconnection undoes something: the close, each resolver's spend
        // or expiry.
        let heights = ch
            .close
            .iter()
            .map(|c| c.height)
            .chain(ch.resolvers.values().filter_map(|r| match r.stage {
                crate::resolver::Stage::Spent { height, .. }
                | crate::resolver::Stage::Resolved { height, .. }
                | crate::resolver::Stage::Expired { height } => Some(height),
                crate::resolver::Stage::Active | crate::resolver::Stage::Abandoned { .. } => None,
            }));
        for h in heights {
            self.touched_at.entry(h).or_default().insert(id);
            entry.heights.push(h);
        }
        let c = &ch.data.commitments;
        let records = c
            .local
            .iter()
            .map(|l| &l.commitment)
            .chain(c.remote_current.iter())
            .chain(c.remote_pending.iter());
        // Incoming HTLCs of the live commitments, and of the confirmed close (updates may
        // have removed them from every live commitment since).
        let on_close = ch.resolvers.values().filter_map(|r| match r.kind {
            crate::resolver::ResolverKind::IncomingHtlc { payment_hash, .. } => Some(payment_hash),
            _ => None,
        });
        let incoming: BTreeSet<PaymentHash> = records
            .flat_map(|r| r.htlcs.iter())
            .filter(|h| h.direction == HtlcDirection::Incoming)
            .map(|h| h.payment_hash)
            .chain(on_close)
            .collect();
        for hash in incoming {
            self.hashes.insert(hash, id);
            entry.hashes.push(hash);
        }
        if ch.acts_every_block() {
            self.every_block.insert(id);
        }
        if let Some(h) = wakeup {
            self.wakeups.insert((h, id));
            self.wakeup_of.insert(id, h);
        }
        self.of_channel.insert(id, entry);
    }

    /// Index a dormant channel: its funding outputs, the payment hashes of its incoming HTLCs,
    /// its exposure (as [`Index::add`] and the exposure index would for the decoded channel)
    /// and its wake-up (at or before the decoded channel's).
    fn add_dormant(&mut self, id: ChannelId, d: &super::DormantChannel, wakeup: Option<Height>) {
        let mut entry = Indexed::default();
        for o in &d.funding {
            self.outpoints.insert(*o, id);
            entry.outpoints.push(*o);
        }
        for hash in &d.incoming {
            self.hashes.insert(*hash, id);
            entry.hashes.push(*hash);
        }
        self.exposure.set(id, d.exposure.as_ref());
        if let Some(h) = wakeup {
            self.wakeups.insert((h, id));
            self.wakeup_of.insert(id, h);
        }
        self.of_channel.insert(id, entry);
    }
}

impl ChainArbitrator {
    /// Make the sweeper's requests for a channel match what the channel wants now: new or
    /// changed requests registered, requests no longer wanted (a reorged close, an archived
    /// channel) cancelled. Without a configured destination nothing is registered.
    pub(super) fn sync_claims(&mut self, id: ChannelId) {
        if self.config.sweep_to.is_none() {
            return;
        }
        let wanted = self
            .channels
            .get(&id)
            .map(|ch| {
                ch.sweep_requests(
                    &self.node,
                    &fee_context(&self.config, self.fees.as_ref()),
                    &self.config.close,
                )
            })
            .unwrap_or_default();
        let had = self.index.swept.remove(&id).unwrap_or_default();
        if wanted.is_empty() && had.is_empty() {
            return;
        }
        let keep: BTreeSet<OutPoint> = wanted.iter().map(|r| r.outpoint).collect();
        // The channel's claims no longer wanted, in claim order: found through the channel's
        // own entries, not by scanning every claim of the node.
        let mut stale: Vec<(ClaimId, OutPoint)> = had
            .iter()
            .filter(|o| !keep.contains(o))
            .filter_map(|o| {
                let claim = self.sweeper.claim_for(o)?;
                let c = self.sweeper.claims().get(&claim)?;
                let live = !matches!(c.state, crate::sweeper::ClaimState::Spent { .. });
                (c.request.channel == id && live).then_some((claim, *o))
            })
            .collect();
        stale.sort_unstable();
        for (_, outpoint) in stale {
            self.step_sweeper(SweeperInput::Cancel(&outpoint));
        }
        for request in wanted {
            self.step_sweeper(SweeperInput::Request(Box::new(request)));
        }
        let now: BTreeSet<OutPoint> = had
            .into_iter()
            .chain(keep)
            .filter(|o| self.claim_of_channel(id, o))
            .collect();
        if !now.is_empty() {
            self.index.swept.insert(id, now);
        }
    }

    /// Whether the sweeper holds a claim of `outpoint` for channel `id`.
    pub(super) fn claim_of_channel(&self, id: ChannelId, outpoint: &OutPoint) -> bool {
        self.sweeper
            .claim_for(outpoint)
            .and_then(|claim| self.sweeper.claims().get(&claim))
            .is_some_and(|c| c.request.channel == id)
    }

    /// Refresh a channel's entries in the indexes. A dormant channel keeps the entries it was
    /// loaded with: nothing a step does to it without decoding it changes them.
    pub(super) fn reindex(&mut self, id: ChannelId) {
        if self.dormant.contains_key(&id) {
            return;
        }
        self.index.remove(id);
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.refresh_confirmed_commitment();
        }
        self.index.exposure.refresh(id, self.channels.get(&id));
        let Some(ch) = self.channels.get(&id) else {
            return;
        };
        let wakeup = ch.next_wakeup(&self.node, &self.config.close, &self.config.deadlines);
        self.index.add(id, ch, wakeup);
    }

    /// Rebuild every index (after loading).
    pub(super) fn reindex_all(&mut self) {
        self.index = Index::default();
        for c in self.sweeper.claims().values() {
            self.index
                .swept
                .entry(c.request.channel)
                .or_default()
                .insert(c.request.outpoint);
        }
        let ids: Vec<ChannelId> = self.channels.keys().copied().collect();
        for id in ids {
            self.reindex(id);
        }
        for (id, d) in &self.dormant {
            let wakeup = d.wake(&self.config.deadlines);
            self.index.add_dormant(*id, d, wakeup);
        }
        let circuits: Vec<HtlcKey> = self.node.circuits.keys().copied().collect();
        for outgoing in circuits {
            self.index_circuit(outgoing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PairIndex;
    use crate::bolt3::PaymentHash;
    use crate::types::ChannelId;

    #[test]
    fn a_key_finds_exactly_its_values_the_least_and_greatest_included() {
        let (a, b, c) = (
            PaymentHash([1; 32]),
            PaymentHash([2; 32]),
            PaymentHash([3; 32]),
        );
        let (low, mid, high) = (
            ChannelId([0; 32]),
            ChannelId([0x80; 32]),
            ChannelId([0xff; 32]),
        );
        let mut index = PairIndex::default();
        for (h, id) in [(b, high), (a, mid), (b, low), (c, mid), (b, mid)] {
            index.insert(h, id);
        }
        assert_eq!(index.values(&b).collect::<Vec<_>>(), vec![low, mid, high]);
        assert_eq!(index.values(&a).collect::<Vec<_>>(), vec![mid]);
        assert_eq!(index.values(&PaymentHash([9; 32])).count(), 0);
        index.remove(b, mid);
        assert_eq!(index.values(&b).collect::<Vec<_>>(), vec![low, high]);
    }

    #[test]
    fn an_incoming_htlc_finds_every_outgoing_htlc_forwarded_from_it_the_extremes_included() {
        use super::Bounded;
        use crate::types::{HtlcDirection, HtlcKey};
        let key = |c: u8, id: u64, direction| HtlcKey {
            channel: ChannelId([c; 32]),
            htlc_id: id,
            direction,
        };
        let incoming = key(5, 7, HtlcDirection::Incoming);
        let other = key(5, 8, HtlcDirection::Incoming);
        let mut index = PairIndex::default();
        for out in [
            HtlcKey::GREATEST,
            key(9, 1, HtlcDirection::Outgoing),
            HtlcKey::LEAST,
        ] {
            index.insert(incoming, out);
        }
        index.insert(other, key(3, 3, HtlcDirection::Outgoing));
        assert_eq!(
            index.values(&incoming).collect::<Vec<_>>(),
            vec![
                HtlcKey::LEAST,
                key(9, 1, HtlcDirection::Outgoing),
                HtlcKey::GREATEST
            ]
        );
        assert_eq!(index.values(&other).count(), 1);
    }
}
