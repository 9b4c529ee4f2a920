//! Blocks: a chain that extends a node's tip, and transactions that concern none of its
//! channels.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, WPubkeyHash, Witness,
};
use contractcourt_core::event::{Block, Event};
use contractcourt_core::types::{BlockRef, RawTx};

use crate::fixture::block_hash;

/// Transactions in a full block (a typical mainnet block carries 2,500–4,000).
pub const BLOCK_TXS: usize = 3_000;

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    for p in parts {
        engine.input(p);
    }
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// `count` transactions that spend and pay nothing of ours: two P2WPKH inputs (with a 72-byte
/// signature and a 33-byte key in each witness) and two P2WPKH outputs, as most of a block is.
/// `seed` makes each set different.
pub fn unrelated_txs(count: usize, seed: u64) -> Vec<RawTx> {
    (0..count as u64)
        .map(|i| {
            let input = |j: u32| TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array(digest(&[
                        b"unrelated",
                        &seed.to_le_bytes(),
                        &i.to_le_bytes(),
                        &j.to_le_bytes(),
                    ])),
                    vout: j,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]),
            };
            let output = |j: u8| TxOut {
                value: Amount::from_sat(10_000 + i),
                script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(
                    digest(&[b"payee", &seed.to_le_bytes(), &i.to_le_bytes(), &[j]])[..20]
                        .try_into()
                        .unwrap_or([0; 20]),
                )),
            };
            RawTx(Transaction {
                version: Version::TWO,
                lock_time: LockTime::ZERO,
                input: vec![input(0), input(1)],
                output: vec![output(0), output(1)],
            })
        })
        .collect()
}

/// Blocks extending a tip, one after another.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The current tip.
    pub tip: BlockRef,
    /// Distinguishes this chain's blocks from another's at the same heights.
    pub salt: u64,
}

impl Chain {
    /// Blocks on top of `tip`.
    pub fn on(tip: BlockRef) -> Chain {
        Chain { tip, salt: 1 }
    }

    /// The next block, with `txs`; it becomes the tip.
    pub fn next(&mut self, txs: Vec<RawTx>) -> Block {
        let height = self.tip.height + 1;
        let hash = block_hash(&self.tip.hash, height, self.salt);
        let block = Block {
            height,
            hash,
            prev_hash: self.tip.hash,
            time: 1_700_000_000 + (height - crate::fixture::START_HEIGHT) * 600,
            txs,
        };
        self.tip = BlockRef { height, hash };
        block
    }

    /// The next block as an event.
    pub fn next_event(&mut self, txs: Vec<RawTx>) -> Event {
        Event::BlockConnected(self.next(txs))
    }
}

/// Put `relevant` transactions among `unrelated` ones, spread evenly, keeping the block at
/// `unrelated.len()` transactions (each relevant one replaces an unrelated one).
pub fn mix(unrelated: &[RawTx], relevant: Vec<RawTx>) -> Vec<RawTx> {
    let total = unrelated.len().max(relevant.len());
    if relevant.is_empty() {
        return unrelated.to_vec();
    }
    let every = total / relevant.len();
    let mut relevant = relevant.into_iter();
    let mut out = Vec::with_capacity(total);
    for (i, tx) in unrelated.iter().enumerate().take(total) {
        if i % every == every / 2 {
            if let Some(r) = relevant.next() {
                out.push(r);
                continue;
            }
        }
        out.push(tx.clone());
    }
    out.extend(relevant);
    out
}
