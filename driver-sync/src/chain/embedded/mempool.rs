//! The mempool's storage: accepted transactions with their fee and size, which outpoint each
//! spends, descendants (for replacements) and block template selection by ancestor fee rate.
//! What may enter is decided in `accept.rs`.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{OutPoint, Transaction, TxOut, Txid};
use contractcourt_core::event::{Event, MempoolRemovalReason};
use contractcourt_core::types::RawTx;

/// A transaction in the mempool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolTx {
    /// The transaction.
    pub tx: Transaction,
    /// Its txid.
    pub txid: Txid,
    /// Its fee (sat).
    pub fee_sat: u64,
    /// Its virtual size (vB).
    pub vsize: u64,
    /// Its weight (WU).
    pub weight: u64,
}

impl MempoolTx {
    /// The core's [`Event::MempoolTx`] for it.
    pub fn to_event(&self) -> Event {
        Event::MempoolTx {
            tx: RawTx(self.tx.clone()),
            fee_sat: self.fee_sat,
            vsize: self.vsize,
        }
    }
}

/// A change to the mempool, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MempoolChange {
    /// A transaction entered (submitted, in a package, or back from a disconnected block).
    Added(MempoolTx),
    /// A transaction left.
    Removed {
        /// Its txid.
        txid: Txid,
        /// Why.
        reason: MempoolRemovalReason,
    },
}

impl MempoolChange {
    /// The core's event for it ([`Event::MempoolTx`] or [`Event::MempoolRemoved`]).
    pub fn to_event(&self) -> Event {
        match self {
            MempoolChange::Added(entry) => entry.to_event(),
            MempoolChange::Removed { txid, reason } => Event::MempoolRemoved {
                txid: *txid,
                reason: reason.clone(),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    /// Arrival order: parents always arrive before their children, so this is a topological
    /// order too.
    seq: u64,
    tx: MempoolTx,
}

/// The mempool's transactions.
#[derive(Clone, Debug, Default)]
pub(super) struct Mempool {
    entries: BTreeMap<Txid, Entry>,
    spenders: BTreeMap<OutPoint, Txid>,
    next_seq: u64,
}

impl Mempool {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get(&self, txid: &Txid) -> Option<&MempoolTx> {
        self.entries.get(txid).map(|e| &e.tx)
    }

    /// The output `outpoint` of a mempool transaction.
    pub(super) fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.get(&outpoint.txid)?
            .tx
            .output
            .get(outpoint.vout as usize)
    }

    /// The mempool transaction spending `outpoint`.
    pub(super) fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spenders.get(outpoint).copied()
    }

    pub(super) fn insert(&mut self, tx: MempoolTx) {
        for input in &tx.tx.input {
            self.spenders.insert(input.previous_output, tx.txid);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(tx.txid, Entry { seq, tx });
    }

    pub(super) fn remove(&mut self, txid: &Txid) -> Option<MempoolTx> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.tx.input {
            if self.spenders.get(&input.previous_output) == Some(txid) {
                self.spenders.remove(&input.previous_output);
            }
        }
        Some(entry.tx)
    }

    /// `roots` and every mempool transaction descending from them.
    pub(super) fn with_descendants(&self, roots: &BTreeSet<Txid>) -> BTreeSet<Txid> {
        let mut found = BTreeSet::new();
        let mut stack: Vec<Txid> = roots.iter().copied().collect();
        while let Some(txid) = stack.pop() {
            if !found.insert(txid) {
                continue;
            }
            let Some(entry) = self.entries.get(&txid) else {
                continue;
            };
            for vout in 0..entry.tx.tx.output.len() as u32 {
                if let Some(child) = self.spender(&OutPoint { txid, vout }) {
                    stack.push(child);
                }
            }
        }
        found
    }

    /// `txid` and every mempool transaction it descends from (Core's `GetAncestorCount`
    /// counts these).
    pub(super) fn with_ancestors(&self, txid: Txid) -> BTreeSet<Txid> {
        let mut found = BTreeSet::new();
        let mut stack = vec![txid];
        while let Some(t) = stack.pop() {
            let Some(entry) = self.entries.get(&t) else {
                continue;
            };
            if !found.insert(t) {
                continue;
            }
            stack.extend(entry.tx.tx.input.iter().map(|i| i.previous_output.txid));
        }
        found
    }

    /// Every transaction, in arrival order.
    pub(super) fn in_order(&self) -> Vec<&MempoolTx> {
        let mut entries: Vec<&Entry> = self.entries.values().collect();
        entries.sort_by_key(|e| e.seq);
        entries.into_iter().map(|e| &e.tx).collect()
    }

    /// Empty the mempool, returning its transactions in arrival order.
    pub(super) fn drain(&mut self) -> Vec<MempoolTx> {
        let mut entries: Vec<Entry> = std::mem::take(&mut self.entries).into_values().collect();
        self.spenders.clear();
        entries.sort_by_key(|e| e.seq);
        entries.into_iter().map(|e| e.tx).collect()
    }

    /// `txid` and its ancestors not in `selected`, in arrival (topological) order.
    fn unselected_ancestors(&self, txid: Txid, selected: &BTreeSet<Txid>) -> Vec<&Entry> {
        let mut found = BTreeSet::new();
        let mut stack = vec![txid];
        while let Some(t) = stack.pop() {
            if selected.contains(&t) || !found.insert(t) {
                continue;
            }
            if let Some(entry) = self.entries.get(&t) {
                stack.extend(
                    entry
                        .tx
                        .tx
                        .input
                        .iter()
                        .map(|i| i.previous_output.txid)
                        .filter(|p| self.entries.contains_key(p)),
                );
            }
        }
        let mut entries: Vec<&Entry> = found.iter().filter_map(|t| self.entries.get(t)).collect();
        entries.sort_by_key(|e| e.seq);
        entries
    }

    /// The transactions of a block template: repeatedly the unselected transaction whose
    /// package with its unselected ancestors has the highest fee rate (ties: earliest arrival),
    /// parents before children, while the weight fits in `max_weight`.
    pub(super) fn select(&self, max_weight: u64) -> Vec<Transaction> {
        let order = self.in_order();
        let mut selected = BTreeSet::new();
        let mut chosen = Vec::new();
        let mut used = 0u64;
        loop {
            // (fee, vsize, weight, package)
            let mut best: Option<(u64, u64, u64, Vec<&Entry>)> = None;
            for tx in &order {
                if selected.contains(&tx.txid) {
                    continue;
                }
                let package = self.unselected_ancestors(tx.txid, &selected);
                let weight: u64 = package.iter().map(|e| e.tx.weight).sum();
                if used.saturating_add(weight) > max_weight {
                    continue;
                }
                let fee: u64 = package.iter().map(|e| e.tx.fee_sat).sum();
                let vsize: u64 = package.iter().map(|e| e.tx.vsize).sum();
                let better = match &best {
                    None => true,
                    Some((best_fee, best_vsize, _, _)) => {
                        u128::from(fee) * u128::from(*best_vsize)
                            > u128::from(*best_fee) * u128::from(vsize)
                    }
                };
                if better {
                    best = Some((fee, vsize, weight, package));
                }
            }
            let Some((_, _, weight, package)) = best else {
                break;
            };
            used += weight;
            for entry in package {
                selected.insert(entry.tx.txid);
                chosen.push(entry.tx.tx.clone());
            }
        }
        chosen
    }
}
