//! The UTXO view kept beside the kernel's chainstate: what the mempool checks inputs against.
//! Blocks are applied in order and undone on reorgs with the coins they spent.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{Block, OutPoint, Script, Transaction, TxOut};
use contractcourt_core::types::Height;
use serde::{Deserialize, Serialize};

use super::ChainError;

/// An unspent output of the active chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utxo {
    /// The output.
    pub txout: TxOut,
    /// The height of the block that created it.
    pub height: Height,
    /// Whether a coinbase created it (spendable only after 100 blocks).
    pub is_coinbase: bool,
}

/// The coins a connected block spent, to restore them when it is disconnected.
pub(super) type Undo = Vec<(OutPoint, Utxo)>;

/// Bitcoin Core's `IsUnspendable`: never added to the UTXO set.
fn is_unspendable(script: &Script) -> bool {
    script.is_op_return() || script.len() > 10_000
}

fn created_coins(tx: &Transaction, height: Height) -> impl Iterator<Item = (OutPoint, Utxo)> + '_ {
    let txid = tx.compute_txid();
    let is_coinbase = tx.is_coinbase();
    tx.output
        .iter()
        .enumerate()
        .filter(|(_, out)| !is_unspendable(&out.script_pubkey))
        .map(move |(vout, out)| {
            (
                OutPoint {
                    txid,
                    vout: vout as u32,
                },
                Utxo {
                    txout: out.clone(),
                    height,
                    is_coinbase,
                },
            )
        })
}

/// The unspent outputs of the active chain.
#[derive(Clone, Debug, Default)]
pub(super) struct UtxoSet {
    coins: BTreeMap<OutPoint, Utxo>,
}

impl UtxoSet {
    pub(super) fn get(&self, outpoint: &OutPoint) -> Option<&Utxo> {
        self.coins.get(outpoint)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&OutPoint, &Utxo)> {
        self.coins.iter()
    }

    /// Connect `block` at `height`: spend its inputs, add its outputs. Returns the undo data.
    /// A missing input (which the kernel would never accept) leaves the set unchanged.
    pub(super) fn apply(&mut self, block: &Block, height: Height) -> Result<Undo, ChainError> {
        let mut undo = Undo::new();
        let mut created = Vec::new();
        for tx in &block.txdata {
            if !tx.is_coinbase() {
                for input in &tx.input {
                    match self.coins.remove(&input.previous_output) {
                        Some(coin) => undo.push((input.previous_output, coin)),
                        None => {
                            let missing = input.previous_output;
                            self.rollback(&created, undo);
                            return Err(ChainError::Inconsistent(format!(
                                "block at height {height} spends {missing}, not in the view"
                            )));
                        }
                    }
                }
            }
            for (outpoint, coin) in created_coins(tx, height) {
                self.coins.insert(outpoint, coin);
                created.push(outpoint);
            }
        }
        Ok(undo)
    }

    fn rollback(&mut self, created: &[OutPoint], undo: Undo) {
        for outpoint in created {
            self.coins.remove(outpoint);
        }
        self.coins.extend(undo);
    }

    /// Disconnect `block`: remove its outputs, restore the coins it spent.
    pub(super) fn undo(&mut self, block: &Block, undo: &Undo) {
        for tx in &block.txdata {
            for (outpoint, _) in created_coins(tx, 0) {
                self.coins.remove(&outpoint);
            }
        }
        for (outpoint, coin) in undo {
            self.coins.insert(*outpoint, coin.clone());
        }
    }
}

/// A scratch view over a [`UtxoSet`]: coins hidden (spent, or created by undone blocks) and
/// coins added (created by scratch blocks, or restored by undoing), without touching the set.
/// Used to price coinbases, diagnose refused blocks and build forks.
pub(super) struct Overlay<'a> {
    base: &'a UtxoSet,
    hidden: BTreeSet<OutPoint>,
    added: BTreeMap<OutPoint, Utxo>,
}

impl<'a> Overlay<'a> {
    pub(super) fn new(base: &'a UtxoSet) -> Overlay<'a> {
        Overlay {
            base,
            hidden: BTreeSet::new(),
            added: BTreeMap::new(),
        }
    }

    pub(super) fn get(&self, outpoint: &OutPoint) -> Option<&Utxo> {
        if let Some(coin) = self.added.get(outpoint) {
            return Some(coin);
        }
        if self.hidden.contains(outpoint) {
            return None;
        }
        self.base.get(outpoint)
    }

    fn hide(&mut self, outpoint: OutPoint) {
        self.added.remove(&outpoint);
        self.hidden.insert(outpoint);
    }

    fn restore(&mut self, outpoint: OutPoint, coin: Utxo) {
        self.hidden.remove(&outpoint);
        self.added.insert(outpoint, coin);
    }

    /// Undo a connected block (with its undo data).
    pub(super) fn undo(&mut self, block: &Block, undo: &Undo) {
        for tx in &block.txdata {
            for (outpoint, _) in created_coins(tx, 0) {
                self.hide(outpoint);
            }
        }
        for (outpoint, coin) in undo {
            self.restore(*outpoint, coin.clone());
        }
    }

    /// Apply one transaction at `height` whatever its validity: spend what it spends, add what
    /// it creates. Returns its fee if every input was available and the outputs do not exceed
    /// them.
    pub(super) fn apply_tx(&mut self, tx: &Transaction, height: Height) -> Option<u64> {
        let fee = if tx.is_coinbase() {
            None
        } else {
            let mut inputs_sat = Some(0u64);
            for input in &tx.input {
                let value = self
                    .get(&input.previous_output)
                    .map(|c| c.txout.value.to_sat());
                inputs_sat = match (inputs_sat, value) {
                    (Some(sum), Some(v)) => sum.checked_add(v),
                    _ => None,
                };
            }
            let outputs_sat = tx
                .output
                .iter()
                .try_fold(0u64, |sum, o| sum.checked_add(o.value.to_sat()));
            match (inputs_sat, outputs_sat) {
                (Some(i), Some(o)) => i.checked_sub(o),
                _ => None,
            }
        };
        if !tx.is_coinbase() {
            for input in &tx.input {
                self.hide(input.previous_output);
            }
        }
        for (outpoint, coin) in created_coins(tx, height) {
            self.restore(outpoint, coin);
        }
        fee
    }

    /// Apply every transaction of a block at `height`.
    pub(super) fn apply_block(&mut self, block: &Block, height: Height) {
        for tx in &block.txdata {
            self.apply_tx(tx, height);
        }
    }
}
