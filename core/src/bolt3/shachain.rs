//! Per-commitment secrets (BOLT 3 "Per-commitment Secret Requirements").
//!
//! The holder of a channel generates every per-commitment secret from one secret seed
//! (B03-SEC-01/02): commitment `n` uses index `2^48 - 1 - n`, so indices count *down* from
//! [`MAX_INDEX`]. A secret at index `I` lets anyone derive the secret of every index that agrees
//! with `I` above `I`'s lowest set bit, which is what lets the receiving side keep all revealed
//! secrets in at most 49 slots ([`SecretStore`], B03-SEC-03).

use std::collections::BTreeMap;

use bitcoin::hashes::{sha256, Hash};
use serde::{Deserialize, Serialize};

use super::hex_32;

/// The first (highest) per-commitment secret index: `2^48 - 1`, used by commitment number 0.
pub const MAX_INDEX: u64 = (1 << 48) - 1;

/// How many slots a [`SecretStore`] has: one per possible count of trailing zero bits of a
/// 48-bit index (0 to 47), plus one for index 0.
pub const MAX_SLOTS: usize = 49;

/// The secret index of commitment number `commitment_number`: `2^48 - 1 - commitment_number`.
///
/// Commitment numbers are 48-bit; a larger number saturates to index 0 (use
/// [`checked_secret_index`] to detect it).
pub fn secret_index(commitment_number: u64) -> u64 {
    MAX_INDEX.saturating_sub(commitment_number)
}

/// The secret index of commitment number `commitment_number`, or `None` if the number does not
/// fit in 48 bits.
pub fn checked_secret_index(commitment_number: u64) -> Option<u64> {
    MAX_INDEX.checked_sub(commitment_number)
}

/// BOLT 3 `generate_from_seed`: starting from `seed`, for each bit `B` set in `index` from bit 47
/// down to bit 0, flip bit `B` of the value and replace it with its SHA256.
///
/// Only the low 48 bits of `index` are used.
pub fn generate_from_seed(seed: &[u8; 32], index: u64) -> [u8; 32] {
    derive(seed, 48, index)
}

/// Derive the secret of `index` from `base`, the secret of an index that agrees with `index` on
/// every bit from `free_bits` upward: flip and hash for each set bit below `free_bits`.
fn derive(base: &[u8; 32], free_bits: u32, index: u64) -> [u8; 32] {
    let mut value = *base;
    for bit in (0..free_bits.min(48)).rev() {
        if (index >> bit) & 1 == 1 {
            value[(bit / 8) as usize] ^= 1 << (bit % 8);
            value = sha256::Hash::hash(&value).to_byte_array();
        }
    }
    value
}

/// The slot an index is stored in: its number of trailing zero bits, or 48 for index 0.
fn slot_of(index: u64) -> u8 {
    if index == 0 {
        48
    } else {
        // At most 63, so the conversion cannot truncate.
        index.trailing_zeros() as u8
    }
}

/// Whether the secret stored in `slot` under `stored_index` can derive the secret of `index`.
fn covers(slot: u8, stored_index: u64, index: u64) -> bool {
    (stored_index >> slot) == (index >> slot)
}

/// Why a secret was refused by a [`SecretStore`] (or a serialised store was refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShachainError {
    /// The index is above [`MAX_INDEX`].
    IndexOutOfRange {
        /// The index given.
        index: u64,
    },
    /// Secrets must arrive in descending index order, starting at [`MAX_INDEX`].
    UnexpectedIndex {
        /// The index the store expects next.
        expected: u64,
        /// The index given.
        index: u64,
    },
    /// Every index down to 0 has been received; there is no next secret.
    StoreFull {
        /// The index given.
        index: u64,
    },
    /// The new secret does not derive a secret already stored: one of them was not generated
    /// from the same seed.
    SecretMismatch {
        /// The index of the refused secret.
        index: u64,
        /// The index of the stored secret it failed to derive.
        stored_index: u64,
    },
    /// A serialised store is not a store that a sequence of accepted inserts could produce.
    InvalidStoredEntry {
        /// The index of the offending entry.
        index: u64,
    },
}

impl std::fmt::Display for ShachainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShachainError::IndexOutOfRange { index } => {
                write!(f, "secret index {index} is above 2^48-1")
            }
            ShachainError::UnexpectedIndex { expected, index } => {
                write!(f, "secret index {index} received, expected {expected}")
            }
            ShachainError::StoreFull { index } => {
                write!(
                    f,
                    "secret index {index} received after index 0: no secrets remain"
                )
            }
            ShachainError::SecretMismatch {
                index,
                stored_index,
            } => write!(
                f,
                "secret for index {index} does not derive the stored secret for index {stored_index}"
            ),
            ShachainError::InvalidStoredEntry { index } => {
                write!(f, "stored secret entry for index {index} is inconsistent")
            }
        }
    }
}

impl std::error::Error for ShachainError {}

/// One stored (index, secret) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    index: u64,
    #[serde(with = "hex_32")]
    secret: [u8; 32],
}

/// The serialised form: the entries in slot order. Deserialising checks it (see
/// [`SecretStore::from_entries`]).
#[derive(Serialize, Deserialize)]
struct StoreRepr {
    entries: Vec<Entry>,
}

/// The compact store of the per-commitment secrets a counterparty has revealed (BOLT 3
/// `insert_secret`): at most [`MAX_SLOTS`] (index, secret) pairs from which every revealed secret
/// can be re-derived.
///
/// A secret whose index has `k` trailing zeros lives in slot `k` (slot 48 for index 0) and can
/// derive every index that differs from it only in the low `k` bits. Secrets must be inserted in
/// the order they are revealed: [`MAX_INDEX`], `MAX_INDEX - 1`, ... down to 0.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "StoreRepr", into = "StoreRepr")]
pub struct SecretStore {
    /// Slot number → entry.
    slots: BTreeMap<u8, Entry>,
}

impl SecretStore {
    /// An empty store, expecting [`MAX_INDEX`] first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store the secret revealed for `index`.
    ///
    /// The index must be the next expected one ([`SecretStore::next_index`]) and the secret must
    /// derive every secret held in a lower slot; otherwise the secret is refused and the store is
    /// left unchanged.
    pub fn insert(&mut self, index: u64, secret: [u8; 32]) -> Result<(), ShachainError> {
        if index > MAX_INDEX {
            return Err(ShachainError::IndexOutOfRange { index });
        }
        match self.next_index() {
            None => return Err(ShachainError::StoreFull { index }),
            Some(expected) if expected != index => {
                return Err(ShachainError::UnexpectedIndex { expected, index })
            }
            Some(_) => {}
        }
        let slot = slot_of(index);
        for entry in self.slots.range(..slot).map(|(_, e)| e) {
            if derive(&secret, u32::from(slot), entry.index) != entry.secret {
                return Err(ShachainError::SecretMismatch {
                    index,
                    stored_index: entry.index,
                });
            }
        }
        self.slots.insert(slot, Entry { index, secret });
        Ok(())
    }

    /// The secret of `index`, if it has been received (derived from the slot that covers it).
    pub fn get(&self, index: u64) -> Option<[u8; 32]> {
        let lowest = self.lowest_index()?;
        if index > MAX_INDEX || index < lowest {
            return None;
        }
        self.slots
            .iter()
            .find(|(slot, entry)| covers(**slot, entry.index, index))
            .map(|(slot, entry)| derive(&entry.secret, u32::from(*slot), index))
    }

    /// The secret of commitment number `commitment_number`, if it has been received.
    pub fn get_by_commitment_number(&self, commitment_number: u64) -> Option<[u8; 32]> {
        checked_secret_index(commitment_number).and_then(|index| self.get(index))
    }

    /// The index the store expects next, or `None` once index 0 has been received.
    pub fn next_index(&self) -> Option<u64> {
        match self.lowest_index() {
            None => Some(MAX_INDEX),
            Some(lowest) => lowest.checked_sub(1),
        }
    }

    /// The lowest index received so far (the most recent secret), if any.
    pub fn lowest_index(&self) -> Option<u64> {
        self.slots.values().map(|e| e.index).min()
    }

    /// The highest commitment number whose secret has been received, if any.
    pub fn latest_commitment_number(&self) -> Option<u64> {
        self.lowest_index().map(|index| MAX_INDEX - index)
    }

    /// How many (index, secret) pairs are held (at most [`MAX_SLOTS`]).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no secret has been received yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Rebuild a store from its entries, checking that it is exactly what accepted inserts of
    /// `MAX_INDEX` down to the lowest entry's index would have produced: every entry in the slot
    /// of its index, exactly the slots such a sequence fills, and every entry deriving the
    /// lower-slot entries that were present when it was inserted.
    fn from_entries(entries: Vec<Entry>) -> Result<Self, ShachainError> {
        let mut slots = BTreeMap::new();
        for entry in entries {
            if entry.index > MAX_INDEX {
                return Err(ShachainError::IndexOutOfRange { index: entry.index });
            }
            if slots.insert(slot_of(entry.index), entry).is_some() {
                return Err(ShachainError::InvalidStoredEntry { index: entry.index });
            }
        }
        let store = SecretStore { slots };
        let Some(lowest) = store.lowest_index() else {
            return Ok(store);
        };
        for slot in 0..MAX_SLOTS as u8 {
            let expected = expected_index(lowest, slot);
            let held = store.slots.get(&slot).map(|e| e.index);
            if held != expected {
                let index = held.or(expected).unwrap_or(lowest);
                return Err(ShachainError::InvalidStoredEntry { index });
            }
        }
        for (slot, entry) in &store.slots {
            for lower in store.slots.range(..*slot).map(|(_, e)| e) {
                // Entries with a higher index were already there when `entry` was inserted.
                if lower.index > entry.index
                    && derive(&entry.secret, u32::from(*slot), lower.index) != lower.secret
                {
                    return Err(ShachainError::SecretMismatch {
                        index: entry.index,
                        stored_index: lower.index,
                    });
                }
            }
        }
        Ok(store)
    }
}

/// The index held in `slot` after inserting `MAX_INDEX` down to `lowest`: the smallest index
/// `>= lowest` with exactly `slot` trailing zeros, if there is one.
fn expected_index(lowest: u64, slot: u8) -> Option<u64> {
    if slot >= 48 {
        return (lowest == 0).then_some(0);
    }
    let step = 1u64 << slot;
    let mut multiple = lowest.div_ceil(step);
    // Odd multiples of `step` are exactly the indices with `slot` trailing zeros.
    if multiple & 1 == 0 {
        multiple += 1;
    }
    multiple
        .checked_mul(step)
        .filter(|index| *index <= MAX_INDEX)
}

impl TryFrom<StoreRepr> for SecretStore {
    type Error = ShachainError;

    fn try_from(repr: StoreRepr) -> Result<Self, Self::Error> {
        SecretStore::from_entries(repr.entries)
    }
}

impl From<SecretStore> for StoreRepr {
    fn from(store: SecretStore) -> Self {
        StoreRepr {
            entries: store.slots.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(seed: &[u8; 32], count: u64) -> SecretStore {
        let mut store = SecretStore::new();
        for n in 0..count {
            let index = secret_index(n);
            store
                .insert(index, generate_from_seed(seed, index))
                .unwrap();
        }
        store
    }

    #[test]
    fn commitment_numbers_map_to_descending_indices() {
        assert_eq!(secret_index(0), MAX_INDEX);
        assert_eq!(secret_index(42), MAX_INDEX - 42);
        assert_eq!(secret_index(MAX_INDEX), 0);
        assert_eq!(checked_secret_index(MAX_INDEX + 1), None);
        assert_eq!(secret_index(MAX_INDEX + 1), 0);
    }

    #[test]
    fn index_zero_is_the_seed_itself() {
        assert_eq!(generate_from_seed(&[7; 32], 0), [7; 32]);
        assert_ne!(generate_from_seed(&[7; 32], 1), [7; 32]);
    }

    #[test]
    fn out_of_order_and_out_of_range_indices_are_refused_unchanged() {
        let seed = [9; 32];
        let mut store = filled(&seed, 3);
        let before = store.clone();
        let skip = secret_index(4);
        assert_eq!(
            store.insert(skip, generate_from_seed(&seed, skip)),
            Err(ShachainError::UnexpectedIndex {
                expected: secret_index(3),
                index: skip
            })
        );
        assert_eq!(
            store.insert(MAX_INDEX + 1, [0; 32]),
            Err(ShachainError::IndexOutOfRange {
                index: MAX_INDEX + 1
            })
        );
        assert_eq!(store, before);
        assert_eq!(store.next_index(), Some(secret_index(3)));
        assert_eq!(store.get(secret_index(3)), None);
    }

    #[test]
    fn a_store_that_reached_index_zero_refuses_more() {
        // Build the store directly as it is once index 0 arrives: slot k holds 2^k, slot 48 holds 0.
        let seed = [3; 32];
        let entries = (0..48)
            .map(|k| 1u64 << k)
            .chain([0])
            .map(|index| Entry {
                index,
                secret: generate_from_seed(&seed, index),
            })
            .collect();
        let mut store = SecretStore::from_entries(entries).unwrap();
        assert_eq!(store.len(), MAX_SLOTS);
        assert_eq!(store.next_index(), None);
        assert_eq!(
            store.insert(0, [0; 32]),
            Err(ShachainError::StoreFull { index: 0 })
        );
        assert_eq!(store.get(0), Some(seed));
        assert_eq!(store.get(12345), Some(generate_from_seed(&seed, 12345)));
        assert_eq!(store.latest_commitment_number(), Some(MAX_INDEX));
    }

    #[test]
    fn serde_round_trips_and_refuses_tampered_stores() {
        let seed = [5; 32];
        let store = filled(&seed, 11);
        let json = serde_json::to_value(&store).unwrap();
        let back: SecretStore = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, store);

        // A flipped byte in one secret breaks a derivation check.
        let mut tampered = json.clone();
        let entries = tampered["entries"].as_array_mut().unwrap();
        let last = entries.len() - 1;
        let secret = entries[last]["secret"].as_str().unwrap().to_owned();
        let flipped = format!(
            "{}{}",
            if secret.starts_with('0') { "1" } else { "0" },
            &secret[1..]
        );
        entries[last]["secret"] = serde_json::Value::String(flipped);
        assert!(serde_json::from_value::<SecretStore>(tampered).is_err());

        // A missing entry is not a store any insert sequence produces.
        let mut missing = json;
        missing["entries"].as_array_mut().unwrap().remove(0);
        assert!(serde_json::from_value::<SecretStore>(missing).is_err());
    }

    #[test]
    fn shachain_error_messages_are_lower_case() {
        let errors = [
            ShachainError::IndexOutOfRange { index: 1 },
            ShachainError::UnexpectedIndex {
                expected: 1,
                index: 2,
            },
            ShachainError::StoreFull { index: 0 },
            ShachainError::SecretMismatch {
                index: 1,
                stored_index: 2,
            },
            ShachainError::InvalidStoredEntry { index: 1 },
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.chars().next().unwrap().is_lowercase(), "{msg}");
        }
    }
}
