//! The watched-outpoint index: which channel an outpoint belongs to. Every input of every block
//! transaction is looked up here, so a lookup that misses — nearly all of them — must be cheap
//! and must not grow with the number of channels.
//!
//! An open-addressing table with linear probing and backward-shift deletion (no tombstones), at
//! most half full. Each slot has a 16-bit tag in a dense array of its own: a miss usually reads
//! one tag (a 100k-channel table's tags fit in the L2 cache) and never touches the entries. The
//! hash is the txid's first eight bytes (a double SHA-256, already uniform) mixed with the vout:
//! deterministic, no random seed. Nothing iterates the table in an order that shows.

use bitcoin::hashes::Hash;
use bitcoin::OutPoint;

use crate::types::ChannelId;

/// Outpoint → channel.
#[derive(Clone, Debug, Default)]
pub(super) struct OutpointIndex {
    /// Per slot: 0 when empty, else a non-zero fingerprint of the key's hash.
    tags: Vec<u16>,
    /// Per slot: the entry (meaningful where the tag is not 0).
    entries: Vec<(OutPoint, ChannelId)>,
    /// Entries held.
    len: usize,
}

/// The smallest table allocated.
const MIN_SLOTS: usize = 16;

fn hash(o: &OutPoint) -> u64 {
    let t = o.txid.as_byte_array();
    let mut head = [0u8; 8];
    head.copy_from_slice(&t[..8]);
    let a = u64::from_le_bytes(head) ^ u64::from(o.vout).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let h = a.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 29)
}

impl OutpointIndex {
    /// The home slot and the tag of a key.
    fn place(&self, o: &OutPoint) -> (usize, u16) {
        let h = hash(o);
        let mask = self.tags.len().wrapping_sub(1);
        // Bits 16..32 for the tag, the top bits (through the mask of the low bits of a
        // rotation) for the slot: independent of each other.
        let tag = ((h >> 16) as u16).max(1);
        (((h.rotate_left(24)) as usize) & mask, tag)
    }

    /// The slot holding `o`, if any.
    fn find(&self, o: &OutPoint) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.tags.len() - 1;
        let (mut i, tag) = self.place(o);
        // At most half full: an empty slot ends every probe.
        loop {
            let t = *self.tags.get(i)?;
            if t == 0 {
                return None;
            }
            if t == tag && self.entries.get(i).is_some_and(|(k, _)| k == o) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The channel watching `o`.
    pub(super) fn get(&self, o: &OutPoint) -> Option<ChannelId> {
        self.find(o)
            .and_then(|i| self.entries.get(i))
            .map(|(_, id)| *id)
    }

    /// Watch `o` for `id` (replacing any earlier channel).
    pub(super) fn insert(&mut self, o: OutPoint, id: ChannelId) {
        if let Some(i) = self.find(&o) {
            if let Some(e) = self.entries.get_mut(i) {
                e.1 = id;
            }
            return;
        }
        if (self.len + 1) * 2 > self.tags.len() {
            self.grow();
        }
        self.put_new(o, id);
        self.len += 1;
    }

    /// Place a key known to be absent, with room for it.
    fn put_new(&mut self, o: OutPoint, id: ChannelId) {
        let mask = self.tags.len() - 1;
        let (mut i, tag) = self.place(&o);
        while self.tags.get(i).is_some_and(|t| *t != 0) {
            i = (i + 1) & mask;
        }
        if let (Some(t), Some(e)) = (self.tags.get_mut(i), self.entries.get_mut(i)) {
            *t = tag;
            *e = (o, id);
        }
    }

    fn grow(&mut self) {
        let slots = (self.tags.len() * 2).max(MIN_SLOTS);
        let tags = std::mem::replace(&mut self.tags, vec![0; slots]);
        let empty = (OutPoint::null(), ChannelId([0; 32]));
        let entries = std::mem::replace(&mut self.entries, vec![empty; slots]);
        for (t, (o, id)) in tags.into_iter().zip(entries) {
            if t != 0 {
                self.put_new(o, id);
            }
        }
    }

    /// Stop watching `o`; returns the channel that watched it.
    pub(super) fn remove(&mut self, o: &OutPoint) -> Option<ChannelId> {
        let found = self.find(o)?;
        let removed = self.entries.get(found).map(|(_, id)| *id);
        let mask = self.tags.len() - 1;
        // Backward-shift deletion: pull later entries of the cluster into the hole unless
        // their home slot lies after the hole.
        let mut hole = found;
        let mut j = found;
        loop {
            j = (j + 1) & mask;
            if self.tags.get(j).is_none_or(|t| *t == 0) {
                break;
            }
            let Some(entry) = self.entries.get(j).copied() else {
                break;
            };
            let (home, _) = self.place(&entry.0);
            if (j.wrapping_sub(home) & mask) < (j.wrapping_sub(hole) & mask) {
                continue;
            }
            self.tags.swap(hole, j);
            self.entries.swap(hole, j);
            hole = j;
        }
        if let Some(t) = self.tags.get_mut(hole) {
            *t = 0;
        }
        self.len -= 1;
        removed
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Two indexes are equal when they hold the same entries, whatever their layout.
impl PartialEq for OutpointIndex {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .tags
                .iter()
                .zip(&self.entries)
                .filter(|(t, _)| **t != 0)
                .all(|(_, (o, id))| other.get(o) == Some(*id))
    }
}

impl Eq for OutpointIndex {}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::Txid;
    use std::collections::BTreeMap;

    fn outpoint(n: u32, vout: u32) -> OutPoint {
        let mut t = [0u8; 32];
        // Clustered, low-entropy txids: the worst case for the hash.
        t[..4].copy_from_slice(&(n % 7).to_le_bytes());
        t[28..].copy_from_slice(&n.to_le_bytes());
        OutPoint {
            txid: Txid::from_byte_array(t),
            vout,
        }
    }

    #[test]
    fn matches_a_btreemap_through_inserts_and_removals() {
        let mut index = OutpointIndex::default();
        let mut model = BTreeMap::new();
        let mut x: u64 = 1;
        for step in 0..20_000u32 {
            // A fixed pseudo-random walk (xorshift), reproducible.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let o = outpoint((x % 3000) as u32, (x >> 40) as u32 % 5);
            let id = ChannelId([(step % 251) as u8; 32]);
            if x.is_multiple_of(3) {
                assert_eq!(index.remove(&o), model.remove(&o));
            } else {
                index.insert(o, id);
                model.insert(o, id);
            }
            assert_eq!(index.len(), model.len());
        }
        for n in 0..3000 {
            for vout in 0..5 {
                let o = outpoint(n, vout);
                assert_eq!(index.get(&o), model.get(&o).copied());
            }
        }
        let mut rebuilt = OutpointIndex::default();
        for (o, id) in model.iter().rev() {
            rebuilt.insert(*o, *id);
        }
        assert_eq!(index, rebuilt);
        rebuilt.remove(model.keys().next().unwrap());
        assert_ne!(index, rebuilt);
    }

    #[test]
    fn empty_index_finds_nothing() {
        let mut index = OutpointIndex::default();
        assert_eq!(index.get(&outpoint(1, 0)), None);
        assert_eq!(index.remove(&outpoint(1, 0)), None);
    }
}
